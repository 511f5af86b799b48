"""The model-input path: the one grey uint8 image every model sees, whatever the user's window.

Why a separate path: the training images are JPEGs, i.e. display renderings made with the file's
own default window (and already inverted to "bones white"). To match that distribution a DICOM
must go through its default VOI (VOI LUT, else the first window preset), or, without one, a robust
0.5–99.5 percentile window, and be inverted for MONOCHROME1 / INVERSE. 8-bit PNG/JPEG studies are
already such renderings and pass through unchanged. Training data go through this same function,
so training and inference see the same distribution. The user's window never reaches the model.
Padding (Pixel Padding Value) is left out of the percentile window and is black, like the
unexposed borders of the training JPEGs, so the model does not take it for anatomy.
"""

from __future__ import annotations

import numpy as np

from core.io.padding import black_out
from core.io.study import Study
from core.io.voi import apply_voi_lut, apply_window, percentile_window, to_uint8

LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5


def model_gray(study: Study) -> np.ndarray:
    """uint8 HxW model input (see the module docstring for the normalisation)."""
    pixels = study.pixels
    if study.kind == "image" and study.bits_stored == 8:
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    if study.voi_lut is not None:
        unit = apply_voi_lut(pixels, study.voi_lut, study.voi_lut_first_mapped, study.voi_lut_bits)
    elif study.kind == "dicom" and study.window_presets:
        first = study.window_presets[0]
        unit = apply_window(pixels, first.center, first.width, first.function)
    else:
        unit = apply_window(pixels, *percentile_window(pixels, LOW_PERCENTILE, HIGH_PERCENTILE, study.padding))
    return black_out(to_uint8(unit, study.inverted), study.padding)
