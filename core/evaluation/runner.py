"""Evaluate a model on a manifest split at full image resolution, as the product runs it.

Each image goes through ``load_study`` -> ``model_gray`` -> ``Predictor`` exactly like the viewer and
``adaqat segment``; metrics compare the full-size mask with the ground truth (127 = ignore).
``prompt="box"`` uses the ground-truth lung bounding box (the paper's protocol); ``"auto"`` uses no
human prompt (the clinic's reality).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..io import StudyReadError, load_study
from ..io.mask_file import read_mask_file
from ..io.model_input import model_gray
from ..models.loading import LoadedModel
from ..segment.confidence import automatic_mask_features
from ..segment.predictor import Predictor
from ..io.mask_labels import mask_labels
from ..io.manifest import Sample
from .metrics import image_metrics
from .stats import paired_wilcoxon
from .summary import summarize

METRICS = ("dice", "iou", "hd95", "nsd")
PROMPTS = ("auto", "box")


@dataclass
class Evaluation:
    model: str
    prompt: str
    per_image: list[dict]
    problems: list[str]

    def values(self, metric: str) -> list[float]:
        return [row[metric] for row in self.per_image]

    def summaries(self) -> dict:
        return {metric: summarize(self.values(metric)) for metric in METRICS}


def gt_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    rows, cols = np.nonzero(mask >= 192)
    if rows.size == 0:
        return None
    return float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())


@dataclass
class HeldOutImage:
    """One scored image: what the viewer would show (``gray``) and the reader's mask (0/255, 127 ignore)."""

    id: str
    gray: np.ndarray
    truth: np.ndarray
    spacing_mm: tuple[float, float] | None = None
    name: str = ""  # the file a reader knows the image by (a report names images by file, not by key)
    review: str = "reference"  # "corrected" / "accepted" for a store's images: an accepted mask is the model's own


def manifest_images(samples: list[Sample], problems: list[str]):
    """Held-out images of manifest rows, decoded as the viewer does; unusable rows go to ``problems``."""
    for sample in samples:
        try:
            study = load_study(sample.image)
        except StudyReadError as error:
            problems.append(str(error))
            continue
        try:
            truth, _note = read_mask_file(sample.mask)  # bytes + imdecode: cv2.imread crashes on non-UTF-8 paths
        except ValueError:
            truth = None
        if truth is None or truth.shape != (study.height, study.width):
            problems.append(f"{sample.mask}: mask unreadable or not the image's size; skipped")
            continue
        # Anti-aliased or JPEG masks hold values between 0 and 255: cut as training cuts them.
        yield HeldOutImage(sample.id, model_gray(study), mask_labels(truth), study.pixel_spacing_mm,
                           name=Path(sample.image).name)


def evaluate_images(loaded: LoadedModel, images, prompt: str = "auto", device: str = "cpu",
                    on_image: Callable[[int, int], None] | None = None, total: int = 0,
                    problems: list[str] | None = None, confidence: bool = False) -> Evaluation:
    """Score ``loaded`` on ``HeldOutImage`` items at full resolution, as the product runs it.

    ``confidence`` adds each automatic mask's confidence features (``confidence_features``), from which a
    fine-tune calibrates the confidence to its new model (``core.segment.confidence_calibration``).
    """
    if prompt not in PROMPTS:
        raise ValueError(f"unknown prompt mode '{prompt}' (use {' or '.join(PROMPTS)})")
    predictor = Predictor(loaded, device=device)
    rows = []
    for index, item in enumerate(images):
        predictor.set_image(item.gray)
        box = gt_box(item.truth) if prompt == "box" else None
        result = predictor.predict(box=box) if box is not None else predictor.predict()
        metrics = image_metrics(result.mask, item.truth, spacing_mm=item.spacing_mm)
        rows.append({"id": item.id, "image": getattr(item, "name", "") or item.id,
                     "review": getattr(item, "review", "reference"), **metrics.as_dict()})
        if confidence and box is None:
            rows[-1]["confidence_features"] = automatic_mask_features(predictor, result,
                                                                      predictor.last_low_res_probability())
        if on_image:
            on_image(index + 1, total)
    return Evaluation(loaded.info.label, prompt, rows, problems if problems is not None else [])


def evaluate(loaded: LoadedModel, samples: list[Sample], prompt: str = "auto", device: str = "cpu",
             on_image: Callable[[int, int], None] | None = None) -> Evaluation:
    problems: list[str] = []
    return evaluate_images(loaded, manifest_images(samples, problems), prompt, device, on_image, len(samples), problems)


def compare(a: Evaluation, b: Evaluation, metric: str = "dice") -> dict:
    """Paired Wilcoxon signed-rank test of ``a`` vs ``b`` over the images both scored."""
    b_by_id = {row["id"]: row[metric] for row in b.per_image}
    pairs = [(row[metric], b_by_id[row["id"]]) for row in a.per_image if row["id"] in b_by_id]
    result = paired_wilcoxon([p[0] for p in pairs], [p[1] for p in pairs])
    return {"metric": metric, "model_a": a.model, "model_b": b.model, **result.__dict__}
