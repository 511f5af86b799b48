"""A fine-tuned model carries its own confidence calibration: measured on held-out masks, kept in its card,
applied by every predictor of that model and by no other."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from core.evaluation.runner import evaluate_images, manifest_images
from core.io.manifest import read_manifest
from core.models.artifact import update_card
from core.models.card import read_model_card
from core.models.loading import load_model
from core.paths import bundled_models_dir
from core.segment.confidence import load_confidence_model
from core.segment.confidence_calibration import MAX_SHIFT, MIN_IMAGES, calibration, describe
from core.segment.predictor import Predictor
from tests.shared_data import shared_file


@pytest.fixture(scope="module")
def scored_rows(loaded_model):
    """Six real clinic images scored as a fine-tune scores its held-out images, features included."""
    samples = [s for s in read_manifest(shared_file("clinic-sample", "manifest.csv")).samples if s.split == "val"][:6]
    problems: list[str] = []
    evaluation = evaluate_images(loaded_model, manifest_images(samples, problems), confidence=True)
    assert not problems and len(evaluation.per_image) == 6
    return evaluation.per_image


def test_scored_rows_carry_the_features_the_confidence_model_reads(scored_rows, loaded_model):
    model = load_confidence_model()
    for row in scored_rows:
        features = row["confidence_features"]
        assert math.isfinite(model.predicted_log_error(features))
        assert {"uncertain_fraction", "iou_prediction"} <= set(features)
        assert all(f"agree_{variant}" in features for variant in model.variants)
    plain = evaluate_images(loaded_model, iter(()), confidence=False)
    assert plain.per_image == []


def test_the_shift_centres_the_model_on_its_own_held_out_masks(scored_rows):
    record = calibration(scored_rows)
    assert record["images"] == 6 and abs(record["bias_shift"]) <= MAX_SHIFT
    shifted = load_confidence_model().shifted(record["bias_shift"])
    residuals = [math.log(max(1e-3, 1 - row["dice"])) - shifted.predicted_log_error(row["confidence_features"])
                 for row in scored_rows]
    assert abs(float(np.median(residuals))) < 1e-3  # after the shift, as many masks beat the prediction as miss it
    assert "held-out image(s)" in describe(record) and f"{math.exp(record['bias_shift']):.2f} x" in describe(record)


def test_too_few_masks_keep_the_shared_calibration_and_accepted_masks_do_not_count(scored_rows):
    assert calibration(scored_rows[: MIN_IMAGES - 1]) is None
    assert "shared calibration kept" in describe(None)
    accepted = [dict(row, review="accepted") for row in scored_rows[:3]]
    record = calibration(accepted + scored_rows[3:] + scored_rows[:2])  # 5 judged, 3 accepted
    assert record["images"] == 5
    only_accepted = calibration([dict(row, review="accepted") for row in scored_rows])
    assert only_accepted["images"] == 6  # nothing else to judge by: the accepted masks are used


def test_a_far_off_set_is_clipped(scored_rows):
    ruined = [dict(row, dice=0.0) for row in scored_rows]  # masks all wrong: a bad set, not a bad calibration
    assert calibration(ruined)["bias_shift"] == MAX_SHIFT


def test_the_card_carries_the_shift_to_every_predictor_of_that_model(tmp_path, loaded_model):
    target = tmp_path / "calibrated"
    shutil.copytree(bundled_models_dir() / "default", target)
    update_card(target, {"confidence_calibration": {"bias_shift": 1.5, "images": 9}})
    assert read_model_card(target).confidence_shift == 1.5
    calibrated = load_model(str(target))
    assert calibrated.confidence_shift == 1.5 and loaded_model.confidence_shift == 0.0

    from core.io import load_study
    from core.io.model_input import model_gray

    gray = model_gray(load_study(shared_file("clinic-sample", "images", "bf08030cc1.jpg")))
    qualities = []
    for loaded in (loaded_model, calibrated):
        predictor = Predictor(loaded)
        predictor.set_image(gray)
        qualities.append(predictor.predict(assess=True))
    shared, own = qualities
    assert np.array_equal(shared.mask, own.mask)  # the calibration never changes the mask
    assert own.quality.confidence < shared.quality.confidence  # errors 4.5 x the shared model's: less sure
