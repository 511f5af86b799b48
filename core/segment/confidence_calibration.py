"""A fine-tuned model's own offset of the shared confidence model, measured on its held-out images.

The confidence model (``confidence_model.json``) was fitted on the shipped model's masks. A clinic's
fine-tune changes how sharp the probability maps are: after shenzhen's fine-tune the same share of
uncertain border meant a better mask than it did for the shipped model, so the shared model called
31 % of the new model's masks "low confidence" (half of them fine). The run scores the new model on
held-out images with a reader's mask anyway (its comparison with the active model); the median gap
there between the measured and the predicted ``log(1 - Dice)`` is the model's offset. One number:
the held-out sets are small (8 to 66 images), too few to refit the terms' weights.
"""

from __future__ import annotations

import math

import numpy as np

from .confidence import ConfidenceModel, load_confidence_model

MIN_IMAGES = 5  # fewer held-out masks: the model keeps the shared calibration
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
    gaps = [math.log(max(1e-3, 1.0 - row["dice"])) - model.predicted_log_error(row["confidence_features"])
            for row in judged]
    shift = float(np.clip(np.median(gaps), -MAX_SHIFT, MAX_SHIFT))
    return {"bias_shift": round(shift, 4), "images": len(judged),
            "about": "median of measured minus predicted log(1 - Dice) of this model's masks on the run's "
                     "held-out images; added to the confidence model's bias for this model only",
            "confidence_model_fitted_on": list(model.fitted_on)}


def describe(calibration_record: dict | None) -> str:
    """One line for the run's log: what the recalibration did."""
    if not calibration_record:
        return f"confidence: the shared calibration kept (fewer than {MIN_IMAGES} scored held-out images)"
    factor = math.exp(calibration_record["bias_shift"])
    return (f"confidence recalibrated on {calibration_record['images']} held-out image(s): this model's errors run "
            f"{factor:.2f} x what the shared confidence model predicts from its maps")
