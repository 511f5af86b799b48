"""One training example at model size, and a cache file of many (numpy only, no OpenCV/pydicom).

The cache lets a run skip decoding (and lets a bare GPU machine train without image libraries):
``adaqat train --data examples.npz`` accepts it in place of a manifest.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.mask_labels import IGNORE, LUNG, mask_labels

__all__ = ["CACHE_PARTS", "IGNORE", "LUNG", "Example", "load_example_cache", "mask_labels", "save_example_cache"]

CACHE_PARTS = ("images", "masks", "regions", "ids")


@dataclass
class Example:
    id: str
    image: np.ndarray  # uint8 SxS, letterboxed model input
    mask: np.ndarray  # uint8 SxS: 0, 127 (ignore), 255 (lung); padding is 0
    region_hw: tuple[int, int]  # the image's extent inside the square (rows, cols)


def save_example_cache(path: str | Path, splits: dict[str, list[Example]]) -> None:
    arrays = {}
    for split, examples in splits.items():
        arrays[f"{split}_images"] = np.stack([e.image for e in examples])
        arrays[f"{split}_masks"] = np.stack([e.mask for e in examples])
        arrays[f"{split}_regions"] = np.array([e.region_hw for e in examples], dtype=np.int32)
        arrays[f"{split}_ids"] = np.array([e.id for e in examples])
    np.savez_compressed(path, **arrays)


def load_example_cache(path: str | Path) -> dict[str, list[Example]]:
    """The examples of a cache file; ValueError (one line) for a damaged or incomplete cache."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return _read_cache(data)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
        raise ValueError(f"{path}: not a usable example cache ({reason}); rebuild it with adaqat prepare") from None


def _read_cache(data) -> dict[str, list[Example]]:
    splits = sorted({key.rsplit("_", 1)[0] for key in data.files})
    for split in splits:
        missing = [f"{split}_{part}" for part in CACHE_PARTS if f"{split}_{part}" not in data.files]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        counts = {len(data[f"{split}_{part}"]) for part in CACHE_PARTS}
        if len(counts) != 1:
            raise ValueError(f"split {split} has {sorted(counts)} entries in its parts")
    return {
        split: [
            Example(str(i), img, msk, (int(r[0]), int(r[1])))
            for i, img, msk, r in zip(data[f"{split}_ids"], data[f"{split}_images"], data[f"{split}_masks"], data[f"{split}_regions"])
        ]
        for split in splits
    }
