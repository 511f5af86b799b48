"""Box prompts while training: the automatic prompt and jittered ground-truth boxes, mixed.

Inference in a clinic starts from the automatic prompt (a box around the whole image); a reader may
then draw a box. Training on both makes both modes good. Jitter follows the method (0-20 px at
512 px input), scaled to the model's input size.
"""

from __future__ import annotations

import numpy as np

JITTER_PX_AT_512 = 20.0


def whole_image_box(region_hw: tuple[int, int]) -> np.ndarray:
    h, w = region_hw
    return np.array([0.0, 0.0, w - 1.0, h - 1.0], dtype=np.float32)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    rows, cols = np.nonzero(mask == 255)
    if rows.size == 0:
        return None
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float32)


def training_box(
    mask: np.ndarray, region_hw: tuple[int, int], rng: np.random.Generator, auto_probability: float
) -> np.ndarray:
    """The prompt for one training example, in model-input pixels, clipped to the square."""
    size = mask.shape[0]
    max_jitter = JITTER_PX_AT_512 * size / 512.0
    gt_box = mask_box(mask)
    if gt_box is None or rng.random() < auto_probability:
        box = whole_image_box(region_hw) + rng.uniform(-max_jitter / 2, max_jitter / 2, size=4)
    else:
        box = gt_box + rng.uniform(-max_jitter, max_jitter, size=4)
    box = np.clip(box, 0.0, size - 1.0)
    box[2], box[3] = max(box[2], box[0] + 1.0), max(box[3], box[1] + 1.0)
    return box.astype(np.float32)
