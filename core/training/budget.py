"""Fit a run into a wall-clock budget: time a few real steps, then choose the epoch count.

An annotator on a laptop asks for "at most 15 minutes", not for a number of epochs; the AdaLoRA
schedule (warm-up, budget reduction, final phase) needs the total step count up front, so the epoch
count is fixed before training from measured step times rather than by stopping early.
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from .loop import _collate
from .step import training_step

CALIBRATION_STEPS = 3


def seconds_per_step(model: nn.Module, dataset, batch_size: int, device: str, amp: bool = True) -> float:
    """Median time of the real training step (``step.training_step``) on real batches, warm-up excluded.

    Pass a throw-away copy prepared exactly as it will train (adapters added, trainable set chosen):
    the timing then matches the real step, and nothing of the model that trains is touched. The
    copy gets its own AdamW (the update is part of the step's cost). BatchNorm stays in eval mode,
    as in training, so no running statistic moves.
    """
    items = [dataset[i % len(dataset)] for i in range(batch_size)]
    batch = {k: v.to(device) for k, v in _collate(items).items()}
    was_training = model.training
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-12, weight_decay=0.0)
    use_amp = amp and device.startswith("cuda")
    timings = []
    for _ in range(CALIBRATION_STEPS):
        start = time.perf_counter()
        training_step(model, optimizer, batch, device=device, amp=use_amp, grad_clip=1.0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return sorted(timings[1:])[len(timings[1:]) // 2]


def epochs_within(budget_s: float, step_s: float, train_size: int, val_size: int, batch_size: int, max_epochs: int) -> int:
    """Epochs that fit: each costs its training steps plus a validation pass (about a third of a step per batch)."""
    steps = math.ceil(train_size / batch_size)
    val_steps = math.ceil(val_size / batch_size) if val_size else 0
    per_epoch = step_s * (steps + val_steps / 3.0) * 1.1  # 10 % for data loading and checkpoints
    return max(1, min(max_epochs, int(budget_s // per_epoch)))
