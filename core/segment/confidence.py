"""How much to trust an automatic lung mask: one score in [0, 1] computed with the mask.

A reader's minute is best spent on the few masks that are wrong. Four kinds of evidence, all
available while the mask is made, each cheap next to the image encoder (which dominates the time):

- the mask decoder's own IoU prediction (SAM's head trained to estimate its mask's quality);
- the probability map's margin: how much of the mask sits on probabilities near 0.5;
- agreement with cheap prompt variants: the automatic whole-image box shrunk or shifted re-runs only
  the decoder on the cached embedding; a mask that changes when the box moves a little is fragile;
- shape plausibility (``mask_shape``): two lungs of similar size, a usual share of the image, convex
  outlines and smooth lower borders.

They are combined by a small linear model of ``log(1 - Dice)`` whose coefficients are data
(``confidence_model.json``), fitted on validation splits only by ``benchmarks/bench_confidence.py
--fit``. The score is the model's probability that the mask's Dice with a reader's outline is at least
``dice_threshold`` (0.90): the residuals of the fit give the spread. A flip of the image would be a
further variant, but it needs a second encoder run (about +100 % time), beyond the 20 % allowed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .mask_shape import LungShape, lung_shape

MODEL_FILE = Path(__file__).with_name("confidence_model.json")
UNCERTAIN = (0.1, 0.9)  # probabilities counted as "not sure"

# Variants of the automatic prompt, as insets of the whole-image box (share of width, height) on each
# side: (left, top, right, bottom). Only those named in the fitted model's "variants" are run.
VARIANT_INSETS = {
    "shrink": (0.06, 0.06, 0.06, 0.06),
    "inset_top_left": (0.08, 0.08, 0.0, 0.0),
    "inset_bottom_right": (0.0, 0.0, 0.08, 0.08),
    "narrow": (0.12, 0.0, 0.12, 0.0),
}


def variant_box(whole_box: np.ndarray, name: str) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in whole_box)
    left, top, right, bottom = VARIANT_INSETS[name]
    w, h = x1 - x0, y1 - y0
    return np.array([x0 + left * w, y0 + top * h, x1 - right * w, y1 - bottom * h], dtype=np.float32)


def binary_dice(a: np.ndarray, b: np.ndarray) -> float:
    total = float(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total


def probability_margin(probability: np.ndarray) -> dict[str, float]:
    """Uncertain share of the mask, the map's soft Dice with its own mask, the mean probability inside it."""
    mask = probability > 0.5
    area = float(mask.sum())
    uncertain = float(((probability > UNCERTAIN[0]) & (probability < UNCERTAIN[1])).sum())
    inside = float(probability[mask].sum())
    soft = 2.0 * inside / (float(probability.sum()) + area) if area else 0.0
    return {"uncertain_fraction": uncertain / max(area, 1.0), "soft_dice": soft,
            "mean_inside": inside / area if area else 0.0}


def measure(predictor, iou_prediction: float | None, low_probability: np.ndarray, mask: np.ndarray,
            variants: tuple[str, ...]) -> dict[str, float]:
    """Every raw feature of one automatic mask (``predictor`` holds the image's embedding)."""
    features = {"iou_prediction": float(iou_prediction) if iou_prediction is not None else 0.0}
    features.update(probability_margin(low_probability))
    features.update(measure_variants(predictor, low_probability, variants))
    shape = lung_shape(mask)
    features.update(shape.as_dict())
    return features


def measure_variants(predictor, low_probability: np.ndarray, variants: tuple[str, ...]) -> dict[str, float]:
    """Dice of the automatic mask with the mask of each prompt variant (low resolution, decoder only)."""
    if not variants:
        return {}
    whole = predictor._letterbox.whole_image_box()
    maps = predictor.box_variant_probabilities([variant_box(whole, name) for name in variants])
    main = low_probability > 0.5
    return {f"agree_{name}": binary_dice(main, variant > 0.5) for name, variant in zip(variants, maps)}


# -- the fitted combination ------------------------------------------------------------------------

def transform(features: dict[str, float], name: str) -> float:
    """A feature as the model uses it: logs where the evidence is multiplicative (errors, ratios)."""
    if name.startswith("log1m_"):  # agreement / IoU near 1: how far from 1, on a log scale
        return math.log(max(1e-4, 1.0 - features[name[6:]]))
    if name.startswith("log_"):
        return math.log(max(1e-4, features[name[4:]]))
    if name.startswith("abslog_"):  # distance from the usual value either way
        key, _, usual = name[7:].partition("@")
        return abs(math.log(max(1e-4, features[key]) / float(usual)))
    return float(features[name])


@dataclass(frozen=True)
class ConfidenceModel:
    terms: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    residual_scale: float  # logistic scale of the residuals of log(1 - Dice)
    dice_threshold: float
    variants: tuple[str, ...]
    flags: dict  # thresholds of the quality flags (core.review.quality_flags)
    fitted_on: tuple[str, ...]

    @classmethod
    def from_dict(cls, data: dict) -> ConfidenceModel:
        return cls(tuple(data["terms"]), tuple(data["mean"]), tuple(data["scale"]), tuple(data["weights"]),
                   float(data["bias"]), float(data["residual_scale"]), float(data["dice_threshold"]),
                   tuple(data.get("variants", ())), dict(data.get("flags", {})), tuple(data.get("fitted_on", ())))

    def shifted(self, bias_shift: float) -> ConfidenceModel:
        """The same model for a mask model whose errors run ``exp(bias_shift)`` times the fitted ones."""
        return self if not bias_shift else dataclasses.replace(self, bias=self.bias + float(bias_shift))

    def predicted_log_error(self, features: dict[str, float]) -> float:
        value = self.bias
        for term, mean, scale, weight in zip(self.terms, self.mean, self.scale, self.weights):
            value += weight * (transform(features, term) - mean) / scale
        return value

    def score(self, features: dict[str, float]) -> float:
        """P(Dice >= dice_threshold) under the fitted model, in [0, 1]."""
        z = (math.log(1.0 - self.dice_threshold) - self.predicted_log_error(features)) / self.residual_scale
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@lru_cache(maxsize=4)
def load_confidence_model(path: Path = MODEL_FILE) -> ConfidenceModel:
    return ConfidenceModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def assess_automatic(predictor, result, low_probability: np.ndarray, model: ConfidenceModel | None = None):
    """Confidence and quality flags of an automatic ``SegmentationResult`` (returns ``MaskQuality``).

    The predictor's ``confidence_shift`` (from its model card) calibrates the shared model to this mask model.
    """
    from ..review.quality_flags import assess

    model = (model or load_confidence_model()).shifted(getattr(predictor, "confidence_shift", 0.0))
    features = automatic_mask_features(predictor, result, low_probability, model)
    return assess(model.score(features), features, model.flags)


def automatic_mask_features(predictor, result, low_probability: np.ndarray,
                            model: ConfidenceModel | None = None) -> dict[str, float]:
    """The features ``model`` reads (its prompt variants run) for an automatic ``SegmentationResult``."""
    model = model or load_confidence_model()
    return measure(predictor, result.iou_prediction, low_probability, result.mask, model.variants)


__all__ = ["ConfidenceModel", "LungShape", "assess_automatic", "automatic_mask_features", "load_confidence_model",
           "measure", "transform"]
