"""Lung measurements from a mask: area (cm² when the pixel spacing is known, else pixels) and fraction.

``spacing_mm`` is (row, column) spacing in millimetres, as ``Study.pixel_spacing_mm``; a missing,
zero, negative or non-finite spacing counts as unknown. For projection radiographs the spacing is at
the detector (ImagerPixelSpacing) unless the file says otherwise, so areas carry its magnification.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

UNIT_CM2 = "cm²"
UNIT_PX = "px"
MM2_PER_CM2 = 100.0


def valid_spacing(spacing_mm: Sequence[float] | None) -> tuple[float, float] | None:
    """(row, column) mm if both are finite and > 0, else None."""
    if spacing_mm is None:
        return None
    try:
        row, col = (float(v) for v in spacing_mm)
    except (TypeError, ValueError):
        return None
    if math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0:
        return row, col
    return None


def lung_pixel_count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(np.asarray(mask) > 0))


def area_from_pixel_count(count: int, spacing_mm: Sequence[float] | None) -> tuple[float, str]:
    """(area, unit): cm² when the spacing is known, else the pixel count in "px"."""
    spacing = valid_spacing(spacing_mm)
    if spacing is None:
        return float(count), UNIT_PX
    return count * spacing[0] * spacing[1] / MM2_PER_CM2, UNIT_CM2


def lung_area(mask: np.ndarray, spacing_mm: Sequence[float] | None) -> tuple[float, str]:
    """Lung area of a mask (pixels > 0): (value, "cm²") with a known spacing, else (pixels, "px")."""
    return area_from_pixel_count(lung_pixel_count(mask), spacing_mm)


def lung_fraction(mask: np.ndarray) -> float:
    """Share of the image's pixels that are lung, 0..1 (0 for an empty array)."""
    array = np.asarray(mask)
    return float(lung_pixel_count(array) / array.size) if array.size else 0.0
