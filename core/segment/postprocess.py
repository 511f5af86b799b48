"""Lung-shape clean-up of an automatic mask: drop specks far from the two lungs, fill holes.

Automatic masks on journal-figure radiographs sometimes pick up text labels or markers; the lungs are
the largest components, so keeping components above a fraction of the largest removes the specks
without touching a genuinely small lung.
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_FRACTION_OF_LARGEST = 0.1
MAX_COMPONENTS = 2


def clean_lung_mask(mask: np.ndarray) -> np.ndarray:
    binary = (mask > 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(areas)[::-1]
    keep = [i + 1 for i in order[:MAX_COMPONENTS] if areas[i] >= MIN_FRACTION_OF_LARGEST * areas[order[0]]]
    kept = np.isin(labels, keep).astype(np.uint8)
    filled = _fill_holes(kept)
    return filled * 255


def _fill_holes(binary: np.ndarray) -> np.ndarray:
    h, w = binary.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = binary
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return (binary.astype(bool) | holes).astype(np.uint8)


BOX_MARGIN = 0.02


def keep_inside_box(mask: np.ndarray, box, margin: float = BOX_MARGIN) -> np.ndarray:
    """A reader's box means "the lung I mean is in here": drop mask outside it (plus a small margin).

    The model was trained with boxes around both lungs, so a box drawn around one lung can still
    light up the other; the box is an explicit constraint, so it wins.
    """
    h, w = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    pad = margin * max(h, w)
    left, top = max(0, int(np.floor(min(x0, x1) - pad))), max(0, int(np.floor(min(y0, y1) - pad)))
    right, bottom = min(w, int(np.ceil(max(x0, x1) + pad)) + 1), min(h, int(np.ceil(max(y0, y1) + pad)) + 1)
    kept = np.zeros_like(mask)
    kept[top:bottom, left:right] = mask[top:bottom, left:right]
    return kept
