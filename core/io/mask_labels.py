"""The labels of a reader's lung mask (numpy only): what training and evaluation read a mask as."""

from __future__ import annotations

import numpy as np

LUNG, IGNORE = 255, 127
# Reader masks are 0/127/255, but exported, anti-aliased or JPEG-compressed ones hold every value in
# between: >= 192 is lung, 64..191 ignore (the uncertain edge), below 64 background. Training and
# evaluation use the same cut, so neither throws such masks away nor reads them differently.
LUNG_FROM, IGNORE_FROM = 192, 64


def mask_labels(mask: np.ndarray) -> np.ndarray:
    """A reader's mask (any 8-bit values) as uint8 labels 0 / 127 (ignore) / 255 (lung)."""
    return np.where(mask >= LUNG_FROM, LUNG, np.where(mask >= IGNORE_FROM, IGNORE, 0)).astype(np.uint8)
