"""Burn a finished brush stroke or polygon into a copy of the mask (the only pixel work in app/)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

ON = 255


def stroke(mask: np.ndarray, points: Sequence[tuple[float, float]], diameter: float, paint: bool) -> np.ndarray:
    """A copy of ``mask`` with a round-capped stroke through ``points`` set (paint) or cleared."""
    out = mask.copy()
    value = ON if paint else 0
    radius = max(0.5, float(diameter) / 2.0)
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 2)
    if len(pts) == 0:
        return out
    thickness = max(1, int(round(diameter)))
    for (x, y) in pts[:1]:
        cv2.circle(out, (int(x), int(y)), int(round(radius)), value, thickness=-1, lineType=cv2.LINE_8)
    if len(pts) > 1:
        cv2.polylines(out, [pts], isClosed=False, color=value, thickness=thickness, lineType=cv2.LINE_8)
        x, y = pts[-1]
        cv2.circle(out, (int(x), int(y)), int(round(radius)), value, thickness=-1, lineType=cv2.LINE_8)
    return out


def polygon(mask: np.ndarray, points: Sequence[tuple[float, float]], paint: bool) -> np.ndarray:
    """A copy of ``mask`` with the closed polygon's interior set (paint) or cleared."""
    out = mask.copy()
    pts = np.round(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 2)
    if len(pts) >= 3:
        cv2.fillPoly(out, [pts], ON if paint else 0, lineType=cv2.LINE_8)
    return out
