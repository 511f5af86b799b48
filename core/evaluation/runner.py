"""Evaluate a model on a manifest split at full image resolution, as the product runs it.

Each image goes through ``load_study`` -> ``model_gray`` -> ``Predictor`` exactly like the viewer and
``adaqat segment``; metrics compare the full-size mask with the ground truth (127 = ignore).
``prompt="box"`` uses the ground-truth lung bounding box (the paper's protocol); ``"auto"`` uses no
human prompt (the clinic's reality).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from ..io import StudyReadError, load_study
from ..io.model_input import model_gray
from ..models.loading import LoadedModel
from ..segment.predictor import Predictor
from ..training.manifest import Sample
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


def evaluate(loaded: LoadedModel, samples: list[Sample], prompt: str = "auto", device: str = "cpu",
             on_image: Callable[[int, int], None] | None = None) -> Evaluation:
    if prompt not in PROMPTS:
        raise ValueError(f"unknown prompt mode '{prompt}' (use {' or '.join(PROMPTS)})")
    predictor = Predictor(loaded, device=device)
    rows, problems = [], []
    for index, sample in enumerate(samples):
        try:
            study = load_study(sample.image)
        except StudyReadError as error:
            problems.append(str(error))
            continue
        truth = cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE)
        if truth is None or truth.shape != (study.height, study.width):
            problems.append(f"{sample.mask}: mask unreadable or not the image's size; skipped")
            continue
        predictor.set_image(model_gray(study))
        box = gt_box(truth) if prompt == "box" else None
        result = predictor.predict(box=box) if box is not None else predictor.predict()
        metrics = image_metrics(result.mask, truth, spacing_mm=study.pixel_spacing_mm)
        rows.append({"id": sample.id, **metrics.as_dict()})
        if on_image:
            on_image(index + 1, len(samples))
    return Evaluation(loaded.info.label, prompt, rows, problems)


def compare(a: Evaluation, b: Evaluation, metric: str = "dice") -> dict:
    """Paired Wilcoxon signed-rank test of ``a`` vs ``b`` over the images both scored."""
    b_by_id = {row["id"]: row[metric] for row in b.per_image}
    pairs = [(row[metric], b_by_id[row["id"]]) for row in a.per_image if row["id"] in b_by_id]
    result = paired_wilcoxon([p[0] for p in pairs], [p[1] for p in pairs])
    return {"metric": metric, "model_a": a.model, "model_b": b.model, **result.__dict__}
