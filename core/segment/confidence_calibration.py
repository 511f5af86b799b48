"""A fine-tuned model's own offset of the shared confidence model, measured on its held-out images.

The confidence model (``confidence_model.json``) was fitted on the shipped model's masks. A clinic's
fine-tune changes how sharp the probability maps are: after shenzhen's fine-tune the same share of
uncertain border meant a better mask than it did for the shipped model, so the shared model called
31 % of the new model's masks "low confidence" (most of them fine). The run scores the new model on
held-out images with a reader's mask anyway (its comparison with the active model). The confidence is
a probability, P(Dice >= 0.90), so the offset is the one at which the mean confidence on those images
equals the share that reached 0.90; with few images that share is shrunk towards the uncalibrated mean
(``PRIOR_IMAGES`` pseudo-images), so 5 good masks do not make a model look certain. One number: the
held-out sets are small (8 to 170 images), too few to refit the terms' weights.
"""

from __future__ import annotations

import math

import numpy as np

from .confidence import ConfidenceModel, load_confidence_model

MIN_IMAGES = 5  # fewer held-out masks: the model keeps the shared calibration
PRIOR_IMAGES = 5  # weight of the uncalibrated mean confidence in the target, in images
MAX_SHIFT = 2.0  # errors at most e^2 (7x) above or below the fitted ones: beyond, the images are unusual, not the model


def calibration(rows: list[dict], model: ConfidenceModel | None = None) -> dict | None:
    """The card's ``confidence_calibration`` from scored rows ({"dice", "confidence_features", "review"}).

    Masks a reader only accepted are the parent model's own output and are left out when others exist,
    as the comparison does. ``None`` when too few rows carry features.
    """
    usable = [row for row in rows if row.get("confidence_features")]
    judged = [row for row in usable if row.get("review") != "accepted"] or usable
    if len(judged) < MIN_IMAGES:
        return None
    model = model or load_confidence_model()
    features = [row["confidence_features"] for row in judged]
    reached = sum(row["dice"] >= model.dice_threshold for row in judged)
    target = (reached + PRIOR_IMAGES * mean_confidence(model, features)) / (len(judged) + PRIOR_IMAGES)
    shift = shift_for_mean_confidence(model, features, target)
    return {"bias_shift": round(shift, 4), "images": len(judged), "reached_threshold": int(reached),
            "about": f"offset of the predicted log(1 - Dice) at which this model's mean confidence on the run's "
                     f"held-out images equals the share with Dice >= {model.dice_threshold} (shrunk towards the "
                     f"uncalibrated mean by {PRIOR_IMAGES} images); for this model only",
            "confidence_model_fitted_on": list(model.fitted_on)}


def mean_confidence(model: ConfidenceModel, features: list[dict]) -> float:
    return float(np.mean([model.score(f) for f in features]))


def shift_for_mean_confidence(model: ConfidenceModel, features: list[dict], target: float) -> float:
    """Bisection: the mean confidence falls as the shift grows; clipped to +-MAX_SHIFT."""
    low, high = -MAX_SHIFT, MAX_SHIFT
    if mean_confidence(model.shifted(low), features) <= target:
        return low
    if mean_confidence(model.shifted(high), features) >= target:
        return high
    for _ in range(40):
        middle = 0.5 * (low + high)
        if mean_confidence(model.shifted(middle), features) > target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def describe(calibration_record: dict | None) -> str:
    """One line for the run's log: what the recalibration did."""
    if not calibration_record:
        return f"confidence: the shared calibration kept (fewer than {MIN_IMAGES} scored held-out images)"
    factor = math.exp(calibration_record["bias_shift"])
    return (f"confidence recalibrated on {calibration_record['images']} held-out image(s), "
            f"{calibration_record['reached_threshold']} of them with Dice >= 0.90: this model's errors run "
            f"{factor:.2f} x what the shared confidence model predicts from its maps")
