"""Turn training sources (a manifest split, the viewer's annotation store) into model-size examples.

Every image goes through ``load_study`` and ``model_gray``, exactly as at inference, then the same
letterbox as the predictor. Examples are decoded once and kept in memory at model size (256 px
LiteMedSAM images are 64 KiB each), so epochs cost only the network.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from ..io import StudyReadError, load_study
from ..io.mask_file import ZERO_ONE_NOTE, no_lung_hint, read_mask_file
from ..io.model_input import model_gray
from ..io.policy import not_chest
from ..segment.preprocess import letterbox_image
from ..io.mask_labels import mask_labels
from .example_cache import Example
from ..io.manifest import Sample


def example_from_arrays(example_id: str, gray: np.ndarray, mask: np.ndarray, size: int) -> Example:
    padded, box = letterbox_image(gray, size)
    mask = mask_labels(mask)
    padded_mask, _ = letterbox_image(mask, size, interpolation=cv2.INTER_NEAREST)
    return Example(example_id, padded, padded_mask, box.resized_hw)


def load_examples(samples: Iterable[Sample], size: int) -> tuple[list[Example], list[str]]:
    """Decode manifest samples; returns the usable examples and one line per skipped row."""
    examples, problems, zero_one = [], [], 0
    for sample in samples:
        try:
            example, note = _load_sample(sample, size)
        except (StudyReadError, ValueError) as error:
            problems.append(f"row {sample.row} ({sample.id}): {error}; row skipped")
            continue
        examples.append(example)
        zero_one += note == ZERO_ONE_NOTE
    if zero_one:
        problems.append(f"{zero_one} mask(s) {ZERO_ONE_NOTE}")
    return examples, problems


def _load_sample(sample: Sample, size: int) -> tuple[Example, str]:
    study = load_study(sample.image)
    if not_chest(study):
        raise ValueError(f"{sample.image}: body part '{study.body_part}' is not a chest (adaqat segment flags it "
                         "too); a non-chest image would teach the model wrong lungs")
    gray = model_gray(study)
    mask, note = read_mask_file(sample.mask)
    if mask.shape != gray.shape:
        raise ValueError(f"mask {mask.shape[1]}x{mask.shape[0]} does not match image {gray.shape[1]}x{gray.shape[0]}")
    if not (mask >= 192).any():
        raise ValueError(f"mask {sample.mask} has no lung pixels{no_lung_hint(mask)}")
    return example_from_arrays(sample.id, gray, mask, size), note
