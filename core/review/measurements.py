"""Lung measurements of a mask, in one place: ``measure(mask, spacing, orientation) -> LungMeasurements``.

The viewer's panel, the review CSV, the command line and the PACS report all measure with it, so they
give the same numbers. Area is in cm² when the pixel spacing is known, else in pixels; the fraction is the
share of the image's pixels that are lung; each lung's area goes by patient side (:mod:`.lung_sides`).

Each measurement also says how it is shown: ``PANEL_ROWS`` / ``panel_texts`` (the viewer's panel) and
``CSV_COLUMNS`` / ``csv_cells`` (the review report), so a new measurement is added in this file alone.

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

__all__ = ["CSV_COLUMNS", "MM2_PER_CM2", "PANEL_ROWS", "UNIT_CM2", "UNIT_PX", "Area", "LungMeasurements",
           "area_from_pixel_count", "csv_cells", "lung_area", "lung_fraction", "lung_pixel_count", "measure",
           "measure_counts", "panel_texts", "valid_spacing"]

# The viewer's measurements panel: (attribute, caption), top to bottom.
PANEL_ROWS = (("area", "Lung area:"), ("right", "Right lung:"), ("left", "Left lung:"),
              ("fraction", "Lung fraction:"), ("sides", "Sides:"))
# The review CSV's measurement columns. Each area column holds one unit, so a spreadsheet can sum or plot a
# column: ``*_cm2`` when the spacing is known (else empty), ``*_px`` always; ``area_unit`` says which to report.
CSV_COLUMNS = ("lung_area_cm2", "lung_area_right_cm2", "lung_area_left_cm2", "lung_area_px", "lung_area_right_px",
               "lung_area_left_px", "area_unit", "sides", "lung_fraction")


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
    image_pixels: int
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
                            Area.of(sides.left, spacing_mm), lung_fraction(array), int(array.size), layout)


def measure_counts(lung_pixels: int, image_pixels: int, spacing_mm: Sequence[float] | None) -> LungMeasurements:
    """Measurements from a stored pixel count alone (the mask itself unreadable): no sides."""
    return LungMeasurements(Area.of(lung_pixels, spacing_mm), None, None,
                            lung_pixels / image_pixels if image_pixels else 0.0, int(image_pixels))


def panel_texts(measured: LungMeasurements | None) -> dict[str, str]:
    """The panel's text per ``PANEL_ROWS`` attribute; dashes when there is no mask."""
    if measured is None:
        return {"area": "–", "right": "–", "left": "–", "fraction": "–", "sides": ""}
    return {"area": measured.lungs.text(), "right": measured.right.text() if measured.right else "–",
            "left": measured.left.text() if measured.left else "–",
            "fraction": f"{measured.fraction * 100:.1f} % of the image", "sides": measured.sides_note}


def csv_cells(measured: LungMeasurements | None) -> dict[str, str]:
    """The review CSV's ``CSV_COLUMNS`` cells; empty when the image has no mask (or a side was not measured)."""
    cells = dict.fromkeys(CSV_COLUMNS, "")
    if measured is None:
        return cells
    for side, area in (("", measured.lungs), ("_right", measured.right), ("_left", measured.left)):
        if area is not None:
            cells[f"lung_area{side}_px"] = str(area.pixels)
            cells[f"lung_area{side}_cm2"] = "" if area.cm2 is None else f"{area.cm2:.2f}"
    cells["area_unit"] = measured.unit
    cells["sides"] = "" if measured.layout is None else "file" if measured.layout.from_file else "assumed"
    cells["lung_fraction"] = f"{measured.fraction:.4f}" if measured.image_pixels else ""
    return cells


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
