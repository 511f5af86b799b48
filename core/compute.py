"""Process-wide compute settings: device choice, CPU thread count, and whether torch is here at all.

torch is imported only when a choice needs it (a CUDA device, a torch model's threads), so the ONNX
Runtime route of a reading station never loads it; the reader bundle does not even carry it, and
``require_torch`` turns its absence into one plain sentence about which bundle can do the job.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from .models.errors import ModelLoadError

ANNOTATOR_BUNDLE = "adaqat-annotator"
_requested_threads: int | None = None


class TorchMissingError(ModelLoadError):
    """The task needs torch and this installation (the reader bundle) has none."""


def torch_available() -> bool:
    """Whether torch can be imported here (without importing it)."""
    if "torch" in sys.modules:
        return sys.modules["torch"] is not None  # None: import blocked (how tests play the reader bundle)
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def torch_missing_message(what: str) -> str:
    return (f"{what} needs PyTorch, which this reading-station install does not include; "
            f"use the {ANNOTATOR_BUNDLE} bundle (the annotator's PC) for it, then export the model there "
            "(adaqat models export) and import it here (adaqat models import FILE --activate)")


def require_torch(what: str) -> None:
    """Raise :class:`TorchMissingError` naming ``what`` when torch is not installed."""
    if not torch_available():
        raise TorchMissingError(torch_missing_message(what))


def choose_device(requested: str | None = None) -> str:
    """``cpu`` by default on a laptop; ``cuda`` when asked for (or ``auto`` and present)."""
    requested = (requested or os.environ.get("ADAQAT_DEVICE") or "cpu").lower()
    if requested not in ("cpu", "cuda", "auto"):
        raise RuntimeError(f"unknown device '{requested}' (use cpu, cuda or auto)")
    if requested == "cpu" or (requested == "auto" and not torch_available()):
        return "cpu"
    if requested == "cuda" and not torch_available():
        raise RuntimeError("device 'cuda' needs PyTorch, which this install does not include; use --device cpu")
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    return requested


def cuda_available() -> bool:
    if not torch_available():
        return False
    import torch

    return bool(torch.cuda.is_available())


def set_threads(threads: int | None) -> int:
    """Limit the CPU threads of torch and ONNX Runtime (a clinic laptop also runs other programs).

    Returns the count in effect: the request, else torch's default when torch is already loaded, else 0
    (ONNX Runtime's default, one thread per physical core).
    """
    global _requested_threads
    if threads:
        _requested_threads = max(1, int(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        if _requested_threads:
            torch.set_num_threads(_requested_threads)
        return torch.get_num_threads()
    return _requested_threads or 0


def inference_threads() -> int:
    """Threads for a new ONNX Runtime session: the request, else torch's count if loaded, else 0 (default)."""
    if _requested_threads:
        return _requested_threads
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0
