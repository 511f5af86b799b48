"""Mask confidence and quality flags: shape measurements, the fitted model, the real predictor, the store."""

from __future__ import annotations

import json
import sqlite3

import cv2
import numpy as np
import pytest

from core.io import load_study
from core.io.model_input import model_gray
from core.review.quality_flags import FLAG_TEXT, MaskQuality, QualityFlag, assess
from core.segment.confidence import MODEL_FILE, ConfidenceModel, load_confidence_model
from core.segment.mask_shape import lung_shape
from tests.shared_data import shared_file

CLINIC_IMAGE = ("clinic-sample", "images", "bf08030cc1.jpg")


def two_lungs(h: int = 400, w: int = 360, right_scale: float = 1.0) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (w // 4, h // 2), (w // 7, int(h // 3.2)), 0, 0, 360, 255, -1)
    if right_scale > 0:
        cv2.ellipse(mask, (3 * w // 4, h // 2), (int(w // 7 * right_scale), int(h // 3.2 * right_scale)), 0, 0, 360, 255, -1)
    return mask


def test_shape_of_two_smooth_lungs_one_lung_and_a_ragged_base():
    normal = lung_shape(two_lungs())
    assert normal.components == 2 and normal.side_ratio > 0.95 and normal.solidity > 0.95
    assert normal.lower_border_roughness < 0.5
    assert 0.2 < normal.lung_fraction < 0.4

    one = lung_shape(two_lungs(right_scale=0.0))
    assert one.components == 1 and one.side_ratio < 0.01

    ragged_mask = two_lungs()
    h = ragged_mask.shape[0]
    for x in range(0, ragged_mask.shape[1], 8):  # teeth cut into both lower borders
        ragged_mask[int(h * 0.68) : h, x : x + 4] = 0
    ragged = lung_shape(ragged_mask)
    assert ragged.lower_border_roughness > 3 * normal.lower_border_roughness + 1.0

    assert lung_shape(np.zeros((50, 50), np.uint8)).lung_fraction == 0.0


def test_flags_carry_reasons_and_survive_the_store_format():
    thresholds = {"one_lung_side_ratio": 0.25, "ragged_lower_border": 2.0, "small_lung_fraction": 0.12,
                  "usual_lung_fraction": 0.3, "low_confidence": 0.5}
    good = assess(0.9, {"side_ratio": 0.9, "lower_border_roughness": 0.3, "lung_fraction": 0.3}, thresholds)
    assert good.flags == () and good.summary == ""
    bad = assess(0.2, {"side_ratio": 0.05, "lower_border_roughness": 4.0, "lung_fraction": 0.05}, thresholds)
    assert [f.code for f in bad.flags] == ["one_lung_missing", "lower_border_ragged", "lung_small", "low_confidence"]
    assert bad.summary == ", ".join(FLAG_TEXT[f.code] for f in bad.flags)
    assert "5 %" in bad.flags[0].reason and "30 %" in bad.flags[2].reason
    again = MaskQuality.from_stored(bad.confidence, bad.to_json())
    assert again == bad
    assert MaskQuality.from_stored(0.5, "not json").flags == ()  # a damaged row shows no flag, never crashes


def test_shipped_confidence_model_is_fitted_on_validation_splits_only():
    data = json.loads(MODEL_FILE.read_text())
    assert data["fitted_on"] and all(name.endswith(" val") or name == "shenzhen train" for name in data["fitted_on"])
    assert not {"clinic-sample all 50", "shenzhen val", "peds-lungs test"} & set(data["fitted_on"])
    model = load_confidence_model()
    assert len(model.terms) == len(model.weights) == len(model.mean) == len(model.scale)
    assert len(model.variants) <= 2  # each variant is one more decoder run: the plan for <= 20 % extra time
    assert set(model.flags) >= {"one_lung_side_ratio", "ragged_lower_border", "small_lung_fraction", "low_confidence"}


def test_score_is_a_probability_and_falls_with_worse_evidence():
    model = load_confidence_model()
    clean = {"iou_prediction": 0.95, "uncertain_fraction": 0.08, "soft_dice": 0.98, "agree_shrink": 0.997,
             "agree_inset_top_left": 0.997, "agree_inset_bottom_right": 0.997, "agree_narrow": 0.995,
             "components": 2, "side_ratio": 0.9, "lung_fraction": model.flags["usual_lung_fraction"],
             "solidity": 0.93, "lower_border_roughness": 0.2}
    shaky = dict(clean, iou_prediction=0.80, uncertain_fraction=0.35, soft_dice=0.9, agree_shrink=0.9,
                 agree_inset_top_left=0.9, agree_inset_bottom_right=0.9, agree_narrow=0.85, side_ratio=0.3,
                 solidity=0.8, lower_border_roughness=2.5, lung_fraction=clean["lung_fraction"] * 0.5)
    a, b = model.score(clean), model.score(shaky)
    assert 0.0 <= b < a <= 1.0
    assert a > 0.5 > b


def test_predictor_assesses_a_real_mask_and_flags_a_missing_lung(loaded_model):
    from core.segment.predictor import Predictor

    gray = model_gray(load_study(shared_file(*CLINIC_IMAGE)))
    predictor = Predictor(loaded_model)
    predictor.set_image(gray)
    plain = predictor.predict()
    assert plain.quality is None and 0.0 < plain.iou_prediction <= 1.0
    result = predictor.predict(assess=True)
    assert np.array_equal(result.mask, plain.mask)  # the confidence never changes the mask
    assert result.quality.confidence > 0.5 and result.quality.flags == ()

    half = gray.copy()
    half[:, gray.shape[1] // 2 :] = 0  # the patient's left lung is gone from the image
    predictor.set_image(half)
    cut = predictor.predict(assess=True)
    assert "one_lung_missing" in [f.code for f in cut.quality.flags]
    assert cut.quality.confidence < result.quality.confidence


def test_quality_is_stored_with_its_revision_and_not_with_an_edit(tmp_path, loaded_model):
    from core.store import AnnotationStore

    study = load_study(shared_file(*CLINIC_IMAGE))
    quality = MaskQuality(0.42, (QualityFlag("low_confidence", "confidence 0.42"),))
    mask = np.zeros((study.height, study.width), np.uint8)
    mask[100:300, 100:300] = 255
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(study).key
        assert store.save_model_mask_if_unreviewed(key, mask, loaded_model.info, quality=quality)
        assert MaskQuality.from_stored(*store.latest_qualities()[key]) == quality
        store.save_mask(key, 255 - mask, source="edit")
        assert store.latest_qualities() == {}  # the edited mask is the reader's: no model confidence
    with sqlite3.connect(tmp_path / "store" / "annotations.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM mask_quality").fetchone()[0] == 1


@pytest.mark.parametrize("confidence", [-0.1, 1.5])
def test_out_of_range_confidence_is_clamped_on_save(tmp_path, loaded_model, confidence):
    from core.store import AnnotationStore

    study = load_study(shared_file(*CLINIC_IMAGE))
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(study).key
        store.save_model_mask_if_unreviewed(key, np.zeros((study.height, study.width), np.uint8), loaded_model.info,
                                            quality=MaskQuality(confidence))
        assert 0.0 <= store.latest_qualities()[key][0] <= 1.0


def test_model_terms_are_understood():
    model = ConfidenceModel.from_dict(json.loads(MODEL_FILE.read_text()))
    features = {"iou_prediction": 0.9, "uncertain_fraction": 0.1, "soft_dice": 0.97, "agree_shrink": 0.99,
                "side_ratio": 0.8, "lung_fraction": 0.3, "solidity": 0.9, "lower_border_roughness": 0.3,
                "components": 2, "agree_inset_top_left": 0.99, "agree_inset_bottom_right": 0.99, "agree_narrow": 0.99}
    assert np.isfinite(model.predicted_log_error(features))


def test_csv_report_and_dicom_seg_carry_the_confidence_and_flags(tmp_path, loaded_model):
    import csv

    import pydicom

    from core.export import export_dicom_seg, export_review_csv
    from core.store import AnnotationStore

    source = shared_file("dicom", "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    study = load_study(source)
    mask = np.zeros((study.height, study.width), np.uint8)
    mask[200:700, 150:450] = 255
    quality = MaskQuality(0.31, (QualityFlag("one_lung_missing", "one side holds 3 % of the other's lung"),
                                 QualityFlag("low_confidence", "confidence 0.31")))
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(study).key
        store.save_model_mask_if_unreviewed(key, mask, loaded_model.info, quality=quality)
        rows = list(csv.DictReader(export_review_csv(store, tmp_path / "r.csv").read_text("utf-8-sig").splitlines()))
    assert rows[0]["confidence"] == "0.310" and rows[0]["quality_flags"] == "one lung missing; low confidence"

    seg = pydicom.dcmread(export_dicom_seg(source, mask, tmp_path / "seg.dcm", loaded_model.info, "alice", quality=quality))
    assert "confidence 0.31" in seg.ImageComments and "one lung missing (one side holds 3 %" in seg.ImageComments
    parameters = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmParameters
    assert "confidence=0.310" in parameters and "one lung missing" in parameters
    plain = pydicom.dcmread(export_dicom_seg(source, mask, tmp_path / "plain.dcm", loaded_model.info, "alice"))
    assert "ImageComments" not in plain  # an edited mask's SEG says nothing about model confidence


def test_images_that_teach_most_are_unreviewed_and_least_confident_first(tmp_path, loaded_model):
    from core.review.quality_flags import images_that_teach_most
    from core.store import AnnotationStore
    from tests.shared_data import write_dicom

    with AnnotationStore(tmp_path / "store") as store:
        keys = []
        for i, confidence in enumerate((0.9, 0.2, 0.6, 0.1)):
            pixels = np.full((64, 64), 100 + i, np.uint16)
            study = load_study(write_dicom(tmp_path / f"{i}.dcm", pixels))
            key = store.register_image(study).key
            store.save_model_mask_if_unreviewed(key, np.zeros((64, 64), np.uint8), loaded_model.info,
                                                quality=MaskQuality(confidence))
            keys.append(key)
        store.set_review(keys[3], "accepted", "", "dr a")  # reviewed: not offered
        ranked = images_that_teach_most(store, limit=2)
    assert [round(q.confidence, 2) for _name, q in ranked] == [0.2, 0.6]
