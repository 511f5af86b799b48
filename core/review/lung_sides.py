"""Lung area per side (patient right / left), as radiologists read a chest film.

Each connected lung region is given to the image half its centre lies in. Which image side is the
patient's right comes from the DICOM Patient Orientation (0020,0020): its first value is the
direction of increasing column index, so "L" (the usual PA/AP display) means the image's left half
is the patient's right. Without it (PNG, JPEG, or a file that omits it) the usual display is
assumed and said to be assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SideLayout:
    """Which patient side each image half shows, and whether the file said so."""

    image_left: str  # "R" or "L"
    image_right: str
    from_file: bool

    @property
    def note(self) -> str:
        return "from the file's Patient Orientation" if self.from_file else "assumed (usual PA/AP display)"


def side_layout(patient_orientation: Sequence[str] | None) -> SideLayout:
    first = str(patient_orientation[0]).upper() if patient_orientation else ""
    if first.startswith("L") or first.startswith("R"):
        left = "R" if first.startswith("L") else "L"
        return SideLayout(left, "L" if left == "R" else "R", True)
    return SideLayout("R", "L", False)


@dataclass(frozen=True)
class SidePixels:
    right: int  # patient's right lung
    left: int


def pixels_per_side(mask: np.ndarray, layout: SideLayout) -> SidePixels:
    """Lung pixels of each patient side; a region straddling the midline goes by its centre."""
    right, left = masks_per_side(mask, layout)
    return SidePixels(right=int(np.count_nonzero(right)), left=int(np.count_nonzero(left)))


def masks_per_side(mask: np.ndarray, layout: SideLayout) -> tuple[np.ndarray, np.ndarray]:
    """(right lung, left lung) as bool masks: each connected region goes to the image half of its centre."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    count, labels, _stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    middle = binary.shape[1] / 2.0
    in_left_half = np.array([False] + [centroids[i][0] < middle for i in range(1, count)])
    image_left = in_left_half[labels] & (labels > 0)
    image_right = ~in_left_half[labels] & (labels > 0)
    by_side = {layout.image_left: image_left, layout.image_right: image_right}
    return by_side["R"], by_side["L"]
