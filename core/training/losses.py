"""BCE + Dice on mask logits, with the annotators' ignore region left out of both terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Mean over the batch of BCE (over valid pixels) + soft Dice loss (over valid pixels).

    ``logits`` may be at a lower resolution than ``target``; they are upsampled bilinearly first.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    logits = logits.float()
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * valid
    bce = per_pixel.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1.0)
    probability = torch.sigmoid(logits) * valid
    target = target * valid
    intersection = (probability * target).flatten(1).sum(1)
    denominator = probability.flatten(1).sum(1) + target.flatten(1).sum(1)
    dice = 1.0 - (2.0 * intersection + eps) / (denominator + eps)
    return (bce + dice).mean()


def batch_dice(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Hard Dice per image at the target's resolution (validation during training)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits.float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
    prediction = (logits > 0).float() * valid
    target = target * valid
    intersection = (prediction * target).flatten(1).sum(1)
    total = prediction.flatten(1).sum(1) + target.flatten(1).sum(1)
    return torch.where(total > 0, 2 * intersection / total.clamp_min(1e-6), torch.ones_like(total))
