"""Apply a prompt's answer only where the prompt acts, so refining one lung never touches the other.

SAM answers a box or point prompt with a whole-image mask. Taken as it is, a box around the left
lung erases the right lung, and a point fix redraws both lungs. The radiologist's intent is local:
a box replaces the mask inside the box (a small margin lets the edge settle), and points change
only the connected regions of change that they touch.
"""

from __future__ import annotations

import cv2
import numpy as np

BOX_MARGIN_FRACTION = 0.04  # of the box's larger side, so an edge hugging the box can still move
POINT_REACH_PX = 3  # a change region this close to a point counts as touched by it


def merge_box_result(before: np.ndarray, answer: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """``before`` outside the (slightly widened) box, ``answer`` inside it."""
    height, width = before.shape
    x0, y0, x1, y1 = box
    margin = BOX_MARGIN_FRACTION * max(x1 - x0, y1 - y0)
    c0, c1 = max(0, int(np.floor(x0 - margin))), min(width, int(np.ceil(x1 + margin)) + 1)
    r0, r1 = max(0, int(np.floor(y0 - margin))), min(height, int(np.ceil(y1 + margin)) + 1)
    merged = before.copy()
    merged[r0:r1, c0:c1] = answer[r0:r1, c0:c1]
    return merged


def merge_point_result(before: np.ndarray, answer: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray:
    """``before`` with only those regions of change (added or removed pixels) that a point touches."""
    changed = (before > 0) != (answer > 0)
    if not changed.any() or not points:
        return before.copy()
    count, labels = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
    height, width = before.shape
    touched = set()
    for x, y in points:
        col, row = int(round(x)), int(round(y))
        r0, r1 = max(0, row - POINT_REACH_PX), min(height, row + POINT_REACH_PX + 1)
        c0, c1 = max(0, col - POINT_REACH_PX), min(width, col + POINT_REACH_PX + 1)
        touched.update(int(v) for v in np.unique(labels[r0:r1, c0:c1]) if v)
    merged = before.copy()
    if touched:
        region = np.isin(labels, sorted(touched))
        merged[region] = answer[region]
    return merged
