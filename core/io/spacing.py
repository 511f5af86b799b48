"""The one test of a pixel spacing: both values finite and positive, else the spacing is unknown."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
