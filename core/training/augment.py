"""Augmentation suited to radiographs: small affine changes, flips, exposure changes.

Chest films vary in patient position, field of view and exposure, not in anatomy, so the geometric
changes are small (±10°, ±10 % scale, ±6 % shift) and the photometric ones mimic exposure and
processing (brightness, contrast, gamma). Horizontal flips are allowed: lung masks are nearly
symmetric and the model must not rely on the heart's side. Written in torch (no OpenCV) so the
same code runs on a laptop and on a bare GPU machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 10.0
    scale: float = 0.10
    shift: float = 0.06
    flip_probability: float = 0.5
    brightness: float = 0.10
    contrast: float = 0.15
    gamma: float = 0.25


def augment(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(1,S,S) float image in 0-255 and (1,S,S) uint8 mask (0/127/255) -> augmented copies."""
    angle = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    scale = 1.0 + rng.uniform(-config.scale, config.scale)
    shift = rng.uniform(-config.shift, config.shift, size=2) * 2.0  # normalised coordinates span 2
    flip = -1.0 if rng.random() < config.flip_probability else 1.0
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[cos * flip, -sin, shift[0]], [sin * flip, cos, shift[1]]], dtype=torch.float32)[None]
    grid = F.affine_grid(theta, (1, 1, *image.shape[-2:]), align_corners=False)
    image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    mask = F.grid_sample(mask[None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
    values = (image / 255.0).clamp(0.0, 1.0) ** math.exp(rng.uniform(-config.gamma, config.gamma))
    values = (values - 0.5) * (1.0 + rng.uniform(-config.contrast, config.contrast)) + 0.5
    values = values + rng.uniform(-config.brightness, config.brightness)
    return (values.clamp(0.0, 1.0) * 255.0), mask.round().to(torch.uint8)
