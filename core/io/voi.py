"""VOI (values of interest) transforms from DICOM PS3.3 C.11.2.1.2, as pure numpy.

Both the display path and the model-input path use these, so a window means the same thing
everywhere. Outputs are float32 in [0, 1] (y_min = 0, y_max = 1 in the standard's formulas);
callers quantise to 8 bits and invert for MONOCHROME1 afterwards.
"""

from __future__ import annotations

import numpy as np

VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Map modality values through a window centre/width; float32 in [0, 1].

    LINEAR (C.11.2.1.2.1): x <= c - 0.5 - (w-1)/2 -> 0; x > c - 0.5 + (w-1)/2 -> 1; else
    ((x - (c - 0.5)) / (w - 1) + 0.5). Width below 1 is raised to 1 (the standard's minimum), so a
    viewer dragging the width to 0 gets a hard threshold instead of a crash.
    LINEAR_EXACT (C.11.2.1.3.2): x <= c - w/2 -> 0; x > c + w/2 -> 1; else (x - c) / w + 0.5.
    SIGMOID (C.11.2.1.3.1): 1 / (1 + exp(-4 (x - c) / w)).
    Widths for LINEAR_EXACT and SIGMOID must be > 0; tiny or non-positive widths are raised to 1e-6.
    """
    c = float(center)
    w = float(width)
    name = (function or "LINEAR").strip().upper()
    if name not in VOI_FUNCTIONS:
        raise ValueError(f"unknown VOI LUT function {function!r}; expected one of {VOI_FUNCTIONS}")
    w = max(w, 1.0) if name == "LINEAR" else max(w, 1e-6)

    def window(x: np.ndarray) -> np.ndarray:
        if name == "LINEAR":
            if w == 1.0:
                return (x > c - 0.5).astype(np.float64)
            return np.clip((x - (c - 0.5)) / (w - 1.0) + 0.5, 0.0, 1.0)
        if name == "LINEAR_EXACT":
            return np.clip((x - c) / w + 0.5, 0.0, 1.0)
        # SIGMOID. Clipping the exponent avoids overflow warnings; exp(60) already saturates float32.
        return 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - c) / w, -60.0, 60.0)))

    return _blockwise(values, window)


def apply_voi_lut(values: np.ndarray, lut: np.ndarray, first_mapped: int, bits: int) -> np.ndarray:
    """Map modality values through a VOI LUT Sequence table; float32 in [0, 1].

    Values below ``first_mapped`` take the first entry, values past the table take the last entry
    (C.11.2.1.1). The output is scaled by the LUT's nominal depth (2**bits - 1), so a 12-bit LUT
    that spans 0..4095 fills the display range.
    """
    table = np.asarray(lut, dtype=np.float64).ravel()
    if table.size == 0:
        raise ValueError("VOI LUT is empty")
    top = float(2 ** int(bits) - 1) if int(bits) > 0 else max(float(table.max()), 1.0)

    def lookup(x: np.ndarray) -> np.ndarray:
        index = np.clip(np.rint(x) - int(first_mapped), 0, table.size - 1).astype(np.intp)
        return np.clip(table[index] / top, 0.0, 1.0)

    return _blockwise(values, lookup)


def to_uint8(unit: np.ndarray, invert: bool = False) -> np.ndarray:
    """Quantise [0, 1] to uint8; inversion is done on the integers so it is exactly 255 - value."""
    out = _blockwise(unit, lambda x: np.rint(np.clip(x, 0.0, 1.0) * 255.0), dtype=np.uint8, work_dtype=None)
    if invert:
        np.subtract(255, out, out=out)
    return out


def range_window(lo: float, hi: float) -> tuple[float, float, str]:
    """LINEAR_EXACT (centre, width, function) mapping lo -> 0 and hi -> 1 exactly."""
    width = max(float(hi) - float(lo), 1e-3)
    return (float(lo) + float(hi)) / 2.0, width, "LINEAR_EXACT"


def percentile_window(
    values: np.ndarray, low: float, high: float, exclude: np.ndarray | None = None
) -> tuple[float, float, str]:
    """Window spanning the low..high percentiles, from a deterministic strided subsample.

    About a million samples keep this fast on 20-megapixel radiographs while giving the same
    window every time for the same image (training and inference must agree). ``exclude`` (bool,
    same shape) leaves pixels out, e.g. the padding.
    """
    step = max(1, int(np.ceil(np.sqrt(values.size / 1_000_000))))
    if values.ndim == 2:
        sample = values[::step, ::step]
        if exclude is not None:
            kept = sample[~exclude[::step, ::step]]
            sample = kept if kept.size else sample
    else:
        sample = values.ravel()[:: step * step]
    lo, hi = np.percentile(sample, [low, high])
    return range_window(float(lo), float(hi))


# Large radiographs (8000x8000 and up) must not need several full-size float64 temporaries: every
# transform runs over blocks of this many values, so its working memory is a few MB whatever the
# image size, and the result is bit-for-bit what the whole-array formula gives.
BLOCK_VALUES = 1 << 20


def _blockwise(values, transform, dtype=np.float32, work_dtype=np.float64) -> np.ndarray:
    """``transform`` applied to consecutive blocks of ``values`` (cast to ``work_dtype``), as ``dtype``."""
    source = np.asarray(values)
    out = np.empty(source.shape, dtype=dtype)
    flat_in, flat_out = source.reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, BLOCK_VALUES):
        block = flat_in[start : start + BLOCK_VALUES]
        flat_out[start : start + BLOCK_VALUES] = transform(block if work_dtype is None else block.astype(work_dtype))
    return out
