"""Pixel Padding Value / Pixel Padding Range Limit (PS3.3 C.7.5.1.1.2): pixels where nothing was imaged.

A detector's unexposed border or a shutter is often stored as one padding value far outside the
anatomy (0, -2000, 65535). Counting it in the display range squeezes the chest into a few grey
levels; feeding it to the model makes the model segment the border. So the padding is found once
on the stored values, excluded from every data-driven range (full range, percentile windows) and
shown black in both the display and the model input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def padding_mask(ds: Dataset, stored: np.ndarray) -> tuple[np.ndarray | None, str]:
    """(True where ``stored`` is padding, or None; a warning) from the stored (pre-rescale) values."""
    value, limit = _int_or_none(ds, "PixelPaddingValue"), _int_or_none(ds, "PixelPaddingRangeLimit")
    if value is None or stored.ndim != 2:
        return None, ""
    lo, hi = sorted((value, value if limit is None else limit))
    mask = (stored >= lo) & (stored <= hi)
    if not mask.any():
        return None, ""
    if mask.all():
        return None, "every pixel equals the Pixel Padding Value; padding ignored"
    return mask, ""


def black_out(image: np.ndarray, padding: np.ndarray | None) -> np.ndarray:
    """uint8 ``image`` with the padding set to 0 (black), in place; returns it."""
    if padding is not None:
        image[padding] = 0
    return image


def _int_or_none(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        if isinstance(value, (bytes, bytearray)):  # OB/UN in a damaged or implicit file
            value = int.from_bytes(value[:2], "little", signed=ds.get("PixelRepresentation", 0) == 1)
        if value is None or value == "":
            return None
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        return int(value)
    except (TypeError, ValueError, IndexError, AttributeError):
        return None
