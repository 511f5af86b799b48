"""Lung measurements of a mask, in one place: ``measure(mask, spacing, orientation) -> LungMeasurements``.

The viewer's panel, the review CSV, the command line and the PACS report all measure with it, so they
give the same numbers. Area is in cm² when the pixel spacing is known, else in pixels; the fraction is the
share of the image's pixels that are lung; each lung's area goes by patient side (:mod:`.lung_sides`).

``spacing_mm`` is (row, column) spacing in millimetres, as ``Study.pixel_spacing_mm``; a missing,
zero, negative or non-finite spacing counts as unknown. For projection radiographs the spacing is at
the detector (ImagerPixelSpacing) unless the file says otherwise, so areas carry its magnification.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..io.spacing import valid_spacing
from .lung_sides import SideLayout, pixels_per_side, side_layout

UNIT_CM2 = "cm²"
UNIT_PX = "px"
MM2_PER_CM2 = 100.0

__all__ = ["MM2_PER_CM2", "UNIT_CM2", "UNIT_PX", "Area", "LungMeasurements", "area_from_pixel_count", "lung_area",
           "lung_fraction", "lung_pixel_count", "measure", "measure_counts", "valid_spacing"]


@dataclass(frozen=True)
class Area:
    """An area as measured: the pixel count, and cm² when the spacing is known."""

    pixels: int
    cm2: float | None

    @classmethod
    def of(cls, pixels: int, spacing_mm: Sequence[float] | None) -> Area:
        spacing = valid_spacing(spacing_mm)
        return cls(int(pixels), None if spacing is None else pixels * spacing[0] * spacing[1] / MM2_PER_CM2)

    @property
    def unit(self) -> str:
        return UNIT_PX if self.cm2 is None else UNIT_CM2

    @property
    def value(self) -> float:
        """The measurement to report: cm², else pixels."""
        return float(self.pixels) if self.cm2 is None else self.cm2

    def text(self) -> str:
        return f"{self.cm2:.1f} {UNIT_CM2}" if self.cm2 is not None else f"{self.pixels:,} px (spacing unknown)"


@dataclass(frozen=True)
class LungMeasurements:
    """Both lungs, each patient side (None when the sides were not measured) and the lung fraction."""

    lungs: Area
    right: Area | None
    left: Area | None
    fraction: float  # lung pixels / image pixels, 0..1
    layout: SideLayout | None = None  # which image half is which side, and whether the file said so

    @property
    def unit(self) -> str:
        return self.lungs.unit

    @property
    def sides_note(self) -> str:
        return self.layout.note if self.layout is not None else ""


def measure(mask: np.ndarray, spacing_mm: Sequence[float] | None,
            orientation: Sequence[str] | None) -> LungMeasurements:
    """Measure a lung mask (pixels > 0 are lung); ``orientation``: the DICOM Patient Orientation, if any."""
    array = np.asarray(mask)
    layout = side_layout(orientation)
    sides = pixels_per_side(array, layout)
    return LungMeasurements(Area.of(lung_pixel_count(array), spacing_mm), Area.of(sides.right, spacing_mm),
                            Area.of(sides.left, spacing_mm), lung_fraction(array), layout)


def measure_counts(lung_pixels: int, image_pixels: int, spacing_mm: Sequence[float] | None) -> LungMeasurements:
    """Measurements from a stored pixel count alone (the mask itself unreadable): no sides."""
    return LungMeasurements(Area.of(lung_pixels, spacing_mm), None, None,
                            lung_pixels / image_pixels if image_pixels else 0.0)


def lung_pixel_count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(np.asarray(mask) > 0))


def area_from_pixel_count(count: int, spacing_mm: Sequence[float] | None) -> tuple[float, str]:
    """(area, unit): cm² when the spacing is known, else the pixel count in "px"."""
    area = Area.of(count, spacing_mm)
    return area.value, area.unit


def lung_area(mask: np.ndarray, spacing_mm: Sequence[float] | None) -> tuple[float, str]:
    """Lung area of a mask (pixels > 0): (value, "cm²") with a known spacing, else (pixels, "px")."""
    return area_from_pixel_count(lung_pixel_count(mask), spacing_mm)


def lung_fraction(mask: np.ndarray) -> float:
    """Share of the image's pixels that are lung, 0..1 (0 for an empty array)."""
    array = np.asarray(mask)
    return float(lung_pixel_count(array) / array.size) if array.size else 0.0
