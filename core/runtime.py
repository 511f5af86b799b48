"""Process-wide torch settings: device choice and CPU thread count."""

from __future__ import annotations

import os

import torch


def choose_device(requested: str | None = None) -> str:
    """``cpu`` by default on a laptop; ``cuda`` when asked for (or ``auto`` and present)."""
    requested = (requested or os.environ.get("ADAQAT_DEVICE") or "cpu").lower()
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    if requested not in ("cpu", "cuda"):
        raise RuntimeError(f"unknown device '{requested}' (use cpu, cuda or auto)")
    return requested


def set_threads(threads: int | None) -> int:
    """Limit torch's intra-op threads (a clinic laptop also runs other programs)."""
    if threads:
        torch.set_num_threads(max(1, int(threads)))
    return torch.get_num_threads()
