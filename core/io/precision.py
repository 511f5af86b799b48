"""The float type of modality values: float32 unless that would round the image's values.

float32 holds every integer up to 2**24 exactly; 32-bit detectors and rescaled 32-bit data reach
2**31, where float32 steps by 128-256 and a smooth image becomes a few grey bands. Such images keep
float64 (twice the memory, only for them); the usual 12-16-bit radiographs stay float32.
"""

from __future__ import annotations

import numpy as np

FLOAT32_EXACT = float(1 << 24)


def exact_float(values: np.ndarray) -> np.ndarray:
    """``values`` as contiguous float32, or float64 when any magnitude exceeds 2**24."""
    array = np.asarray(values)
    if array.size and (array.dtype.kind in "iuf" and array.dtype.itemsize > 2):
        peak = max(abs(float(array.min())), abs(float(array.max())))
        if peak > FLOAT32_EXACT:
            return np.ascontiguousarray(array, dtype=np.float64)
    return np.ascontiguousarray(array, dtype=np.float32)
