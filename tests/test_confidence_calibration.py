"""A fine-tuned model carries its own confidence calibration: measured on held-out masks, kept in its card,
applied by every predictor of that model and by no other."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from core.evaluation.runner import evaluate_images, manifest_images
from core.io.manifest import read_manifest
from core.models.about import card_facts
from core.models.artifact import update_card
from core.models.card import read_model_card
from core.models.loading import load_model
from core.paths import bundled_models_dir
from core.segment.confidence import VARIANT_INSETS, load_confidence_model
from core.segment.confidence_calibration import (
    MAX_SHIFT, MIN_IMAGES, PRIOR_IMAGES, calibration, describe, mean_confidence)
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


def test_the_shift_makes_the_mean_confidence_match_the_share_that_reached_the_threshold(scored_rows):
    record = calibration(scored_rows)
    assert record["images"] == 6 and abs(record["bias_shift"]) < MAX_SHIFT
    model = load_confidence_model()
    features = [row["confidence_features"] for row in scored_rows]
    reached = sum(row["dice"] >= 0.90 for row in scored_rows)
    assert record["reached_threshold"] == reached
    target = (reached + PRIOR_IMAGES * mean_confidence(model, features)) / (6 + PRIOR_IMAGES)
    assert abs(mean_confidence(model.shifted(record["bias_shift"]), features) - target) < 1e-3
    # the confidence is a probability: masks that all reach 0.90 raise it, masks that all miss lower it
    good = calibration([dict(row, dice=0.97) for row in scored_rows])["bias_shift"]
    bad = calibration([dict(row, dice=0.70) for row in scored_rows])["bias_shift"]
    assert bad > good
    assert mean_confidence(model.shifted(bad), features) < mean_confidence(model, features)
    assert "held-out image(s)" in describe(record) and f"{math.exp(record['bias_shift']):.2f} x" in describe(record)


def test_too_few_masks_keep_the_shared_calibration_and_accepted_masks_do_not_count(scored_rows):
    assert calibration(scored_rows[: MIN_IMAGES - 1]) is None
    assert "shared calibration kept" in describe(None)
    accepted = [dict(row, review="accepted") for row in scored_rows[:3]]
    record = calibration(accepted + scored_rows[3:] + scored_rows[:2])  # 5 judged, 3 accepted
    assert record["images"] == 5
    only_accepted = calibration([dict(row, review="accepted") for row in scored_rows])
    assert only_accepted["images"] == 6  # nothing else to judge by: the accepted masks are used


def test_a_target_out_of_reach_is_clipped(scored_rows):
    # maps that look hopeless (all border uncertain, the prompt variant disagreeing) under masks that were
    # all right: no shift within +-MAX_SHIFT reaches the target, and the shift stops at the limit
    hopeless = {"uncertain_fraction": 1.0, "iou_prediction": 0.1, **{f"agree_{v}": 0.0 for v in VARIANT_INSETS}}
    rows = [{"dice": 0.99, "confidence_features": hopeless}] * 200
    assert calibration(rows)["bias_shift"] == -MAX_SHIFT


def test_the_card_carries_the_shift_to_every_predictor_of_that_model(tmp_path, loaded_model):
    target = tmp_path / "calibrated"
    shutil.copytree(bundled_models_dir() / "default", target)
    update_card(target, {"confidence_calibration": {"bias_shift": 1.5, "images": 9}})
    card = read_model_card(target)
    assert card.confidence_shift == 1.5
    facts = dict(card_facts(card))  # Help > About names how the model's confidence was calibrated
    assert facts["Mask confidence"] == ("recalibrated for this model on its run's 9 held-out images with a reader's "
                                        "mask (its errors ran 4.48 x what the shared fit predicts)")
    assert "the shared fit" in dict(card_facts(read_model_card(bundled_models_dir() / "default")))["Mask confidence"]
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
