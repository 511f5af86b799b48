"""Mask arrays <-> PNG bytes. A mask is uint8 HxW, 0 = background, 255 = lung."""

from __future__ import annotations

import cv2
import numpy as np


def as_binary_mask(mask: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """``mask`` as a uint8 HxW 0/255 array (anything > 0 is lung); ValueError for a wrong shape or type.

    ``shape`` is the expected (height, width).
    """
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"a mask must be a non-empty 2-D array, got shape {tuple(array.shape)}")
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.number)):
        raise ValueError(f"a mask must hold numbers, got {array.dtype}")
    if shape is not None and tuple(array.shape) != tuple(shape):
        raise ValueError(
            f"the mask is {array.shape[1]}x{array.shape[0]} pixels but the image is {shape[1]}x{shape[0]}"
        )
    return np.where(array > 0, np.uint8(255), np.uint8(0))


def encode_mask_png(mask: np.ndarray) -> bytes:
    """8-bit grayscale PNG bytes of a 0/255 mask."""
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ValueError("the mask could not be encoded as PNG")
    return buffer.tobytes()


def decode_mask_png(data: bytes) -> np.ndarray:
    """The 0/255 uint8 mask stored in PNG bytes; ValueError if they are not a readable PNG."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError("not a readable PNG")
    return np.where(image > 0, np.uint8(255), np.uint8(0))
