"""Segmentation: geometry, automatic mode on real chest X-rays, prompts, embedding cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from core.evaluation.metrics import dice
from core.io import load_study
from core.io.model_input import model_gray
from core.models.loading import load_model
from core.segment.postprocess import clean_lung_mask
from core.segment.predictor import Predictor
from core.segment.preprocess import letterbox_image, logits_to_original
from core.io.manifest import read_manifest
from tests.shared_data import shared_file

# Measured on the cxr-lungs test split with a whole-image box (the data README): the pretrained
# checkpoint's zero-shot level. The bundled fine-tuned model must clear it by a wide margin.
ZERO_SHOT_DICE = 0.62


def test_letterbox_keeps_aspect_and_maps_back():
    gray = np.zeros((300, 600), np.uint8)
    padded, box = letterbox_image(gray, 256)
    assert padded.shape == (256, 256) and box.resized_hw == (128, 256)
    assert np.allclose(box.whole_image_box(), [0, 0, 255, 127])
    assert np.allclose(box.box_to_model([0, 0, 600, 300]), [0, 0, 256, 128])
    logits = torch.full((1, 1, 64, 64), -10.0)
    logits[..., :32, :] = 10.0  # the image's region only (top half of the square)
    probability = logits_to_original(logits, box)
    assert probability.shape == (300, 600) and probability[:-3].min() > 0.99  # last rows blend with padding


def test_clean_lung_mask_drops_specks_and_fills_holes():
    mask = np.zeros((100, 100), np.uint8)
    mask[10:90, 10:45] = 255
    mask[10:90, 55:90] = 255
    mask[40:45, 20:25] = 0  # a hole
    mask[2:4, 2:4] = 255  # a speck (a text label)
    cleaned = clean_lung_mask(mask)
    assert cleaned[3, 3] == 0 and cleaned[42, 22] == 255
    assert (cleaned > 0).sum() == 80 * 35 * 2


def _test_split(limit):
    manifest = read_manifest(shared_file("cxr-lungs", "manifest.csv"))
    return manifest.split("test")[:limit]


@pytest.fixture(scope="module")
def default_predictor():
    return Predictor(load_model("default"))


def test_automatic_masks_land_on_the_lungs(default_predictor):
    scores = []
    for sample in _test_split(6):
        study = load_study(sample.image)
        result = default_predictor.segment(model_gray(study))
        truth = cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE)
        assert result.mask.shape == truth.shape and result.probability.shape == truth.shape
        assert set(np.unique(result.mask)) <= {0, 255}
        scores.append(dice(result.mask, truth))
    assert np.mean(scores) > ZERO_SHOT_DICE + 0.2, scores


def test_automatic_mask_provenance_names_the_model(default_predictor):
    study = load_study(_test_split(1)[0].image)
    result = default_predictor.segment(model_gray(study))
    assert result.prompt == "auto"
    assert result.model.name and result.model.version and result.model.precision in ("fp32", "int8")


def test_prompts_reuse_the_cached_embedding(default_predictor):
    sample = _test_split(1)[0]
    truth = cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE)
    rows, cols = np.nonzero(truth == 255)
    model = default_predictor.model  # torch or ONNX Runtime: count calls of its encoder either way
    calls = []
    encode = model.encode
    model.encode = lambda *args, **kw: calls.append(1) or encode(*args, **kw)
    try:
        default_predictor.set_image(model_gray(load_study(sample.image)))
        box = (cols.min(), rows.min(), cols.max(), rows.max())
        boxed = default_predictor.predict(box=box)
        # a negative point far outside the lungs, a positive one inside the right lung
        inside = (int(np.median(cols[cols < np.median(cols)])), int(np.median(rows)))
        pointed = default_predictor.predict(box=box, points=[inside, (2, 2)], point_labels=[1, 0])
    finally:
        del model.encode
    assert len(calls) == 1, "a new prompt on the same image must not re-run the encoder"
    assert boxed.prompt == "box" and pointed.prompt == "box+points"
    assert dice(boxed.mask, truth) > 0.8
    assert pointed.mask[inside[1], inside[0]] == 255 and pointed.mask[2, 2] == 0


def test_predict_before_set_image_is_an_error():
    predictor = Predictor(load_model("lite_medsam"))
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict()


def test_a_box_around_one_lung_keeps_the_mask_inside_it(default_predictor):
    sample = _test_split(1)[0]
    gray = model_gray(load_study(sample.image))
    h, w = gray.shape
    default_predictor.set_image(gray)
    result = default_predictor.predict(box=(0.05 * w, 0.1 * h, 0.5 * w, 0.9 * h))
    assert (result.mask[:, int(0.53 * w):] == 0).all()
    assert (result.mask[:, : int(0.5 * w)] > 0).mean() > 0.1
