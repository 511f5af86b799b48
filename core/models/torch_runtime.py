"""The torch runtime: builds the model's module from its weights (FP32, or INT8 with the torch kernels).

It runs every model folder, on the CPU or a CUDA GPU, so ``auto`` falls back to it; it needs torch, which
the reading-station bundle does not ship.
"""

from __future__ import annotations

from pathlib import Path

from ..compute import require_torch
from .card import ModelCard


def why_not(card: ModelCard, device: str) -> str | None:
    return None  # whether torch is installed is said when loading, with the bundle to use instead


def load(model_dir: Path, card: ModelCard, weights: Path, device: str, threads: int):
    require_torch(f"{card.name}: this {card.precision.upper()} model"
                  + ("" if card.precision == "fp32" else " (it has no ONNX Runtime form)"))
    from .registry import build_backbone

    if card.precision == "int8":
        from .int8 import load_int8_module

        return load_int8_module(card, weights)
    return build_backbone(card.backbone, weights, card.backbone_config or None)
