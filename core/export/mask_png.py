"""Export a mask as an 8-bit PNG (0 background, 255 lung), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..store.atomic import atomic_write_bytes
from ..store.masks import as_binary_mask, encode_mask_png
from .errors import ExportError, write_failure


def export_mask_png(mask: np.ndarray, path: str | Path) -> Path:
    """Write ``mask`` (anything > 0 is lung) to ``path`` as a 0/255 grayscale PNG; returns the path."""
    path = Path(path)
    try:
        data = encode_mask_png(as_binary_mask(mask))
    except ValueError as error:
        raise ExportError(f"could not export {path.name}: {error}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(path, data)
    except OSError as error:
        raise write_failure(path, error) from None
