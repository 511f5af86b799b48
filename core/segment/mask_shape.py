"""How plausible a lung mask looks as a pair of lungs: two sides, their balance, size and borders.

A mask can be confidently wrong: the decoder may be sure of a mask that stops at an opacity or
misses a lung. Anatomy gives checks the model does not: a frontal chest film shows two lungs of
comparable size on either side of the midline, covering a typical share of the image, with smooth
lower borders (the diaphragm domes). Everything is measured on the mask scaled so its longest side
is ``GRID`` pixels, so the numbers do not depend on the image's resolution and cost a few ms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

GRID = 256
PROFILE_SMOOTHING = 0.15  # median window of the lower-border profile, as a share of the lung's width


@dataclass(frozen=True)
class LungShape:
    components: int  # connected regions of the mask (2 expected)
    side_ratio: float  # smaller / larger mask area of the image's two halves (0 = one side empty)
    lung_fraction: float  # mask area / image area
    solidity: float  # mask area / area of the convex hulls of its two largest regions
    lower_border_roughness: float  # mean distance (grid px) of the lungs' lower borders from a smoothed border

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def lung_shape(mask: np.ndarray) -> LungShape:
    """Shape measurements of a 0/255 (or 0/1) HxW lung mask."""
    small = _to_grid(mask)
    area = float(small.sum())
    if area == 0:
        return LungShape(0, 0.0, 0.0, 0.0, 0.0)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    order = np.argsort(stats[1:, cv2.CC_STAT_AREA])[::-1][:2] + 1
    half = small.shape[1] // 2
    left, right = float(small[:, :half].sum()), float(small[:, half:].sum())
    hull_area, roughness, weights = 0.0, 0.0, 0.0
    for label in order:
        region = (labels == label).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area += float(cv2.contourArea(cv2.convexHull(np.vstack(contours))))
        width = int(stats[label, cv2.CC_STAT_WIDTH])
        roughness += _lower_border_roughness(region) * width
        weights += width
    solidity = min(1.0, area / hull_area) if hull_area > 0 else 0.0
    return LungShape(
        components=int(count - 1),
        side_ratio=min(left, right) / max(left, right),
        lung_fraction=area / float(small.size),
        solidity=solidity,
        lower_border_roughness=roughness / weights if weights else 0.0,
    )


def _to_grid(mask: np.ndarray) -> np.ndarray:
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    h, w = binary.shape
    scale = GRID / max(h, w)
    if scale >= 1:
        return binary
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return (cv2.resize(binary * 255, size, interpolation=cv2.INTER_AREA) >= 128).astype(np.uint8)


def _lower_border_roughness(region: np.ndarray) -> float:
    """Mean |lower border - its median-smoothed self| in grid pixels.

    A diaphragm dome is a smooth curve; a mask that stops at a patchy opacity or leaks into the
    abdomen has a lower border that jumps from column to column.
    """
    columns = np.flatnonzero(region.any(axis=0))
    if columns.size < 5:
        return 0.0
    rows = region.shape[0] - 1 - np.argmax(region[::-1, columns], axis=0)  # lowest lung pixel per column
    window = max(3, int(PROFILE_SMOOTHING * columns.size) | 1)
    padded = np.pad(rows.astype(np.float32), window // 2, mode="edge")
    smooth = np.array([np.median(padded[i : i + window]) for i in range(rows.size)], dtype=np.float32)
    return float(np.mean(np.abs(rows - smooth)))
