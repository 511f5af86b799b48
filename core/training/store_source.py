"""Training examples from the viewer's annotation store: the images a clinic reviewed.

Only ``accepted`` and ``corrected`` images with a stored mask are used (rejected or unreviewed masks
are not ground truth). The split into train/val is by a hash of the image key, so it is stable as
the store grows and never depends on the order of reviews. No identifiers leave the store: examples
carry the store's short image reference only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..evaluation.runner import HeldOutImage
from ..io import StudyReadError, load_study
from ..io.model_input import model_gray
from ..io.policy import not_chest
from ..store import AnnotationStore
from ..store.annotation_store import image_ref
from .example_cache import Example
from .example_loading import example_from_arrays

TRAINING_STATUSES = ("accepted", "corrected")
VAL_PERCENT = 15


def split_of(key: str) -> str:
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    return "val" if bucket < VAL_PERCENT else "train"


def reviewed_images(store_root: str | Path, problems: list[str]):
    """(split, reference, gray, mask, spacing, record) per usable reviewed image; unusable ones go to ``problems``."""
    with AnnotationStore(store_root) as store:
        for record in store.list_images():
            if record.status not in TRAINING_STATUSES:
                continue
            reference = image_ref(record.key)
            mask = store.latest_mask(record.key)
            if mask is None:
                problems.append(f"image {reference} ({record.display_name}): reviewed but has no mask; skipped")
                continue
            try:
                study = load_study(record.path)
            except StudyReadError as error:
                problems.append(f"image {reference}: {error}; skipped")
                continue
            if not_chest(study):  # accepted in the viewer, but a "lung" mask on a tibia must not be learned
                problems.append(f"image {reference} ({record.display_name}): body part '{study.body_part}' is not a "
                                "chest; not used for training")
                continue
            if not record.made_on(study):  # the file was replaced: its mask belongs to another image
                problems.append(f"image {reference} ({record.display_name}): the file now holds a different image "
                                "than the one annotated; skipped")
                continue
            gray = model_gray(study)
            if gray.shape != mask.shape:
                problems.append(f"image {reference} ({record.display_name}): mask size differs from the image; skipped")
                continue
            yield split_of(record.key), reference, gray, mask, study.pixel_spacing_mm, record


def examples_from_store(store_root: str | Path, size: int) -> tuple[dict[str, list[Example]], list[str]]:
    """``{"train": [...], "val": [...]}`` and one line per reviewed image that could not be used."""
    splits: dict[str, list[Example]] = {"train": [], "val": []}
    problems: list[str] = []
    for split, reference, gray, mask, _spacing, _record in reviewed_images(store_root, problems):
        splits[split].append(example_from_arrays(reference, gray, mask, size))
    if not splits["val"] and len(splits["train"]) > 1:  # tiny stores: keep at least one image for selection
        splits["val"].append(splits["train"].pop())
    return splits, problems


def heldout_from_store(store_root: str | Path, val_ids: set[str]) -> list[HeldOutImage]:
    """The store's validation share at full resolution (``val_ids``: the references training held out)."""
    ignored: list[str] = []  # already reported when the examples were built
    return [HeldOutImage(reference, gray, mask, spacing, name=record.display_name, review=record.status)
            for _split, reference, gray, mask, spacing, record in reviewed_images(store_root, ignored)
            if reference in val_ids]
