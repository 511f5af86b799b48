"""Augmentation suited to radiographs: small affine changes, flips, exposure changes, opaque bases.

Chest films vary in patient position, field of view and exposure, not in anatomy, so the geometric
changes are small (±10°, ±10 % scale, ±6 % shift) and the photometric ones mimic exposure and
processing (brightness, contrast, gamma). Horizontal flips are allowed: lung masks are nearly
symmetric and the model must not rely on the heart's side. Written in torch (no OpenCV) so the
same code runs on a laptop and on a bare GPU machine.

Opacity (off unless ``opacity_probability`` > 0): consolidation or effusion makes a lung base look
like soft tissue, yet a radiologist still outlines the anatomical lung there. ``add_opacity`` blends
the lower part of one lung (sometimes both) towards the image's own soft-tissue grey with a smooth,
soft-edged, mottled weight; the mask is left as it is, because the label is the anatomical lung.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

LUNG = 255
MIN_SIDE_PIXELS = 50  # a lung side smaller than this (in pixels) gets no opacity


@dataclass(frozen=True)
class AugmentConfig:
    rotation_deg: float = 10.0
    scale: float = 0.10
    shift: float = 0.06
    flip_probability: float = 0.5
    brightness: float = 0.10
    contrast: float = 0.15
    gamma: float = 0.25
    opacity_probability: float = 0.0  # chance that a view gets a simulated basal opacity
    opacity_strength: tuple[float, float] = (0.6, 1.0)  # blend towards soft tissue at the opacity's core
    opacity_extent: tuple[float, float] = (0.2, 0.6)  # share of the lung's height covered, from its base up
    opacity_both_sides: float = 0.25  # chance that both lungs get one (else one side, chosen at random)
    opacity_tissue_percentile: tuple[float, float] = (60.0, 90.0)  # of non-lung pixels around the lungs


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
    mask = mask.round().to(torch.uint8)
    gamma = math.exp(rng.uniform(-config.gamma, config.gamma))
    contrast = 1.0 + rng.uniform(-config.contrast, config.contrast)
    brightness = rng.uniform(-config.brightness, config.brightness)
    # drawn after the others, and only when enabled, so runs without it replay their old augmentations
    if config.opacity_probability > 0 and rng.random() < config.opacity_probability:
        image = add_opacity(image, mask, rng, config)  # before exposure changes, as on a real film
    values = (image / 255.0).clamp(0.0, 1.0) ** gamma
    values = (values - 0.5) * contrast + 0.5
    values = values + brightness
    return (values.clamp(0.0, 1.0) * 255.0), mask


def add_opacity(image: torch.Tensor, mask: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> torch.Tensor:
    """Brighten the base of one or both lungs towards soft-tissue grey; any size, (1,H,W) float 0-255.

    ``mask`` (1,H,W) marks lung with 255. Returns a new image; pixels outside the opacity's (softened)
    reach are unchanged and no pixel gets darker.
    """
    lung = mask[0] == LUNG
    weight = opacity_weight(lung, rng, config)
    if weight is None:
        return image.clone()
    tissue = soft_tissue_grey(image[0], lung, rng, config)
    strength = rng.uniform(*config.opacity_strength)
    lift = (tissue - image[0]).clamp(min=0.0)  # towards soft tissue: never darker
    return (image[0] + strength * weight * lift).clamp(0.0, 255.0)[None]


def opacity_weight(lung: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> torch.Tensor | None:
    """(H,W) weight in [0, 1]: 1 in the opaque core at a lung base, fading softly; None if no lung."""
    rows, cols = torch.nonzero(lung, as_tuple=True)
    if rows.numel() < 2 * MIN_SIDE_PIXELS:
        return None
    middle = (int(cols.min()) + int(cols.max())) / 2.0
    height, width = lung.shape
    y = torch.arange(height, dtype=torch.float32)[:, None]
    x = torch.arange(width, dtype=torch.float32)[None, :]
    sides = [0, 1] if rng.random() < config.opacity_both_sides else [int(rng.integers(2))]
    total = torch.zeros(height, width)
    for side in sides:
        side_lung = lung & ((x < middle) if side == 0 else (x >= middle))
        r, c = torch.nonzero(side_lung, as_tuple=True)
        if r.numel() < MIN_SIDE_PIXELS:
            continue
        top, base, left, right = float(r.min()), float(r.max()), float(c.min()), float(c.max())
        lung_h, lung_w = max(base - top, 1.0), max(right - left, 1.0)
        edge = base - rng.uniform(*config.opacity_extent) * lung_h  # the opacity's upper edge
        soft = rng.uniform(0.05, 0.15) * lung_h
        centre = rng.uniform(left + 0.2 * lung_w, right - 0.2 * lung_w)
        tilt = rng.uniform(-0.15, 0.15) * lung_h  # an oblique or meniscus-like upper edge
        curve = rng.uniform(-0.2, 0.2) * lung_h
        u = (x - centre) / lung_w
        upper = edge + tilt * u + curve * u * u
        vertical = torch.sigmoid((y - upper) / (soft / 3.0))
        horizontal = torch.exp(-0.5 * (u / rng.uniform(0.6, 1.2)) ** 2)
        reach = soften(side_lung.float(), max(3, int(round(0.04 * lung_w))))  # stays in the (softened) lung
        total = torch.maximum(total, vertical * horizontal * reach)
    if not bool((total > 0).any()):
        return None
    return total * mottle(height, width, rng)


def soften(region: torch.Tensor, radius: int) -> torch.Tensor:
    """Two box blurs of ``radius``: a soft edge of about that width around a 0/1 region."""
    size = 2 * radius + 1
    out = region[None, None]
    for _ in range(2):
        out = F.avg_pool2d(out, size, stride=1, padding=radius, count_include_pad=False)
    return out[0, 0, : region.shape[0], : region.shape[1]]


def mottle(height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
    """A smooth, patchy factor in [1 - depth, 1] (air bronchograms, uneven consolidation)."""
    depth = rng.uniform(0.0, 0.3)
    cells = int(rng.integers(4, 10))
    noise = torch.from_numpy(rng.random((1, 1, cells, cells)).astype(np.float32))
    field = F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False)[0, 0].clamp(0.0, 1.0)
    return 1.0 - depth * field


def soft_tissue_grey(image: torch.Tensor, lung: torch.Tensor, rng: np.random.Generator, config: AugmentConfig) -> float:
    """A percentile of the non-lung, non-padding pixels inside the lungs' bounding box (mediastinum,
    heart, diaphragm): the grey an opaque lung takes on this film, whatever its exposure."""
    rows, cols = torch.nonzero(lung, as_tuple=True)
    box = image[int(rows.min()): int(rows.max()) + 1, int(cols.min()): int(cols.max()) + 1]
    outside = box[~lung[int(rows.min()): int(rows.max()) + 1, int(cols.min()): int(cols.max()) + 1] & (box > 0)]
    percentile = rng.uniform(*config.opacity_tissue_percentile)
    if outside.numel() < MIN_SIDE_PIXELS:
        return float(np.percentile(image[lung].numpy(), 95.0))
    return float(np.percentile(outside.numpy(), percentile))


def opacify_gray(gray: np.ndarray, truth: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A full-resolution uint8 film with a simulated basal opacity (``truth``: 255 = lung, >= 192 read as lung)."""
    image = torch.from_numpy(gray.astype(np.float32))[None]
    mask = torch.from_numpy(np.where(truth >= 192, LUNG, 0).astype(np.uint8))[None]
    return add_opacity(image, mask, rng, config)[0].round().clamp(0, 255).to(torch.uint8).numpy()
