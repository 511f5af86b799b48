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
from ..io.model_input import model_gray
from ..segment.preprocess import letterbox_image
from .example import Example, mask_labels
from .manifest import Sample


def example_from_arrays(example_id: str, gray: np.ndarray, mask: np.ndarray, size: int) -> Example:
    padded, box = letterbox_image(gray, size)
    mask = mask_labels(mask)
    padded_mask, _ = letterbox_image(mask, size, interpolation=cv2.INTER_NEAREST)
    return Example(example_id, padded, padded_mask, box.resized_hw)


def load_examples(samples: Iterable[Sample], size: int) -> tuple[list[Example], list[str]]:
    """Decode manifest samples; returns the usable examples and one line per skipped row."""
    examples, problems = [], []
    for sample in samples:
        try:
            examples.append(_load_sample(sample, size))
        except (StudyReadError, ValueError) as error:
            problems.append(f"row {sample.row} ({sample.id}): {error}; row skipped")
    return examples, problems


def _load_sample(sample: Sample, size: int) -> Example:
    gray = model_gray(load_study(sample.image))
    mask = cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ValueError(f"mask {sample.mask} is not a readable image")
    if mask.shape != gray.shape:
        raise ValueError(f"mask {mask.shape[1]}x{mask.shape[0]} does not match image {gray.shape[1]}x{gray.shape[0]}")
    if not (mask >= 192).any():
        raise ValueError(f"mask {sample.mask} has no lung pixels")
    return example_from_arrays(sample.id, gray, mask, size)
