"""Read a reference lung mask file (manifest ``mask`` column) for training and evaluation.

Why not ``cv2.imread``: OpenCV crashes the process (segmentation fault) on a path that is not valid
UTF-8, which a clinic's folder names can be; the bytes are read here (regular files only) and
decoded with ``cv2.imdecode``. Masks stored as 0/1 (a common export) are read as 0/255, since the
product's convention is 255 = lung; ``note`` says so, so the caller can tell the user once.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .regular_file import read_regular

ZERO_ONE_NOTE = "stored as 0/1; 1 was read as lung (the product's masks use 255 for lung)"


def read_mask_file(path: str | Path) -> tuple[np.ndarray, str]:
    """(uint8 HxW mask, note); ValueError (one line) when the file is missing or not an image."""
    try:
        data = read_regular(path)
    except OSError as error:
        raise ValueError(f"mask {path} cannot be read ({error.strerror or error})") from None
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if mask is None:
        raise ValueError(f"mask {path} is not a readable image")
    if mask.size and int(mask.max()) == 1:
        return (mask * 255).astype(np.uint8), ZERO_ONE_NOTE
    return mask, ""


def no_lung_hint(mask: np.ndarray) -> str:
    """Why a mask has no lung pixels, when its values say so ('' otherwise)."""
    top = int(mask.max()) if mask.size else 0
    if 0 < top < 192:
        return f" (its largest value is {top}; lung pixels must be 255, or at least 192)"
    return ""
