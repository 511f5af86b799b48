"""The display path: modality values -> VOI -> optional inversion -> uint8 for the screen.

Follows the DICOM pipeline a radiologist expects (VOI LUT Sequence first, else the chosen window
with its VOI LUT function, then MONOCHROME1 / INVERSE inversion after VOI). It never touches the
model input (``core.io.model_input``): changing the window changes what the user sees, not the mask.
Padding pixels (``Study.padding``) are left out of the full range and shown black.
"""

from __future__ import annotations

import numpy as np

from core.io.chest_presets import chest_presets
from core.io.padding import black_out
from core.io.study import Study, WindowPreset
from core.io.voi import apply_voi_lut, apply_window, percentile_window, range_window, to_uint8


def render(study: Study, preset: WindowPreset | None = None, invert: bool | None = None) -> np.ndarray:
    """uint8 HxW for the screen.

    ``preset=None`` is the file's default: the VOI LUT Sequence if present, else the first window
    preset, else the pixels' full range (viewers should offer it as "File default", since a VOI LUT
    is not a WindowPreset). ``invert=None`` follows ``study.inverted``.
    """
    unit = voi_unit(study, preset)
    return black_out(to_uint8(unit, study.inverted if invert is None else bool(invert)), study.padding)


def voi_unit(study: Study, preset: WindowPreset | None = None) -> np.ndarray:
    """VOI output in [0, 1] before inversion (shared with the model-input path)."""
    if preset is not None:
        return apply_window(study.pixels, preset.center, preset.width, preset.function)
    if study.voi_lut is not None:
        return apply_voi_lut(study.pixels, study.voi_lut, study.voi_lut_first_mapped, study.voi_lut_bits)
    if study.window_presets:
        first = study.window_presets[0]
        return apply_window(study.pixels, first.center, first.width, first.function)
    return apply_window(study.pixels, *range_window(*content_range(study)))


def default_presets(study: Study) -> list[WindowPreset]:
    """The file's presets, the chest reader's ones, and data-driven ones, so there is always a choice."""
    presets = list(study.window_presets) + chest_presets(study)
    lo, hi = content_range(study)
    presets.append(WindowPreset("Full range", *range_window(lo, hi)))
    presets.append(WindowPreset("Auto (1–99 %)", *percentile_window(study.pixels, 1.0, 99.0, study.padding)))
    return presets


def content_range(study: Study) -> tuple[float, float]:
    """(min, max) of the pixels that are not padding."""
    if study.padding is None:
        return float(study.pixels.min()), float(study.pixels.max())
    keep = ~study.padding
    return float(study.pixels.min(where=keep, initial=np.inf)), float(study.pixels.max(where=keep, initial=-np.inf))
