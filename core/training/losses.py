"""BCE + Dice on mask logits, with the annotators' ignore region left out of both terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F


BORDER_BAND_PX = 7  # at 256 px input: the band either side of the lung border that ``border_weight`` weighs


def border_band(target: torch.Tensor, width: int = BORDER_BAND_PX) -> torch.Tensor:
    """1 within ``width`` pixels of the target's border (dilation minus erosion), else 0."""
    pad = width // 2
    dilated = F.max_pool2d(target, width, stride=1, padding=pad)
    eroded = -F.max_pool2d(-target, width, stride=1, padding=pad)
    return (dilated - eroded).clamp(0, 1)


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, eps: float = 1.0,
                  border_weight: torch.Tensor | float | None = None) -> torch.Tensor:
    """Mean over the batch of BCE (over valid pixels) + soft Dice loss (over valid pixels).

    ``logits`` may be at a lower resolution than ``target``; they are upsampled bilinearly first.
    ``border_weight`` (per image or one value) multiplies the BCE of pixels near the lung border by
    ``1 + border_weight``: where a clinic's rule differs from the model's (the costophrenic recesses, the
    heart border), the disputed pixels are a thin band that the interior would otherwise outweigh.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    logits = logits.float()
    weight = valid
    if border_weight is not None:
        boost = torch.as_tensor(border_weight, dtype=torch.float32, device=target.device).reshape(-1, 1, 1, 1)
        if bool((boost > 0).any()):
            weight = valid * (1.0 + boost * border_band(target))
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * weight
    bce = per_pixel.flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1.0)
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
