"""One training step, the only one: the loop trains with it, the budget calibration times it and
``benchmarks/bench_cpu_training.py`` profiles it, so a measured step is the step that runs.

``phase(name)`` (optional) wraps each part in a context manager (a profiler label, a timer); the
parts are "forward+loss", "backward" and "update" (clip, optimizer, ``after_step``, zero_grad).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from .losses import bce_dice_loss


def autocast_for(device: str, enabled: bool):
    """bf16 autocast on the device's type (the loop enables it on CUDA; benchmarks try it on CPU)."""
    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16, enabled=enabled)


def step_loss(model: nn.Module, batch: dict[str, torch.Tensor], amp: bool, device: str = "cpu",
              extra_loss: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
    """BCE + Dice of the model's masks for a batch (plus ``extra_loss``, e.g. AdaLoRA's orthogonality)."""
    with autocast_for(device, amp):
        loss = bce_dice_loss(model(batch["image"], batch["box"]), batch["target"], batch["valid"],
                             border_weight=batch.get("border_weight"))
        if extra_loss is not None:
            loss = loss + extra_loss()
    return loss


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], *,
                  device: str = "cpu", amp: bool = False, extra_loss: Callable[[], torch.Tensor] | None = None,
                  grad_clip: float | None = None, after_step: Callable[[], None] | None = None,
                  check_loss: Callable[[float], None] | None = None,
                  phase: Callable[[str], contextlib.AbstractContextManager] | None = None) -> float:
    """Forward, loss, backward, clip, optimizer step; returns the loss before the update.

    ``check_loss`` sees the loss before backward and may raise (a diverged run stops untouched).
    """
    phase = phase or (lambda _name: contextlib.nullcontext())
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    with phase("forward+loss"):
        loss = step_loss(model, batch, amp, device, extra_loss)
        value = float(loss.detach())
    if check_loss is not None:
        check_loss(value)
    with phase("backward"):
        loss.backward()
    with phase("update"):
        if grad_clip:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step()
        optimizer.zero_grad(set_to_none=True)
    return value
