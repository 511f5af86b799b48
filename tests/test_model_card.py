"""The model card as a type: a real card round-trips; wrong types, links and pipes are refused in one line."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest

from core.models.card import CARD_FILE, ModelCard, ModelCardError, read_model_card
from core.models.loading import bundled_model_dirs, load_model
from core.paths import bundled_models_dir


@pytest.fixture
def shipped_copy(tmp_path):
    target = tmp_path / "default"
    shutil.copytree(bundled_models_dir() / "default", target)
    return target


def test_the_shipped_card_round_trips_and_exposes_typed_fields():
    folder = bundled_model_dirs()["default"]
    raw = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    card = read_model_card(folder)
    assert card.to_json() == raw  # nothing lost, nothing added
    assert card.precision == "int8" and card.backbone == "lite_medsam" and card.int8["layers"]
    assert card.parameters.trainable == raw["parameters"]["trainable"]
    assert 0.9 < card.validation_dice < 1.0 and card.display_name == raw["name"]
    assert card.replace(label="Ward A").display_name == "Ward A"


@pytest.mark.parametrize("key, value, message", [
    ("name", 7, "'name' must be non-empty text"),
    ("name", "", "'name' must be non-empty text"),
    ("version", ["1"], "'version' must be non-empty text"),
    ("name", "x\x1b[31m", "'name' must be non-empty text without control characters"),
    ("precision", "fp16", "'precision' must be 'fp32' or 'int8'"),
    ("backbone", "sam_vit_z", "backbone 'sam_vit_z' is not supported"),
    ("weights_sha256", "abc", "'weights_sha256' must be a sha256 digest"),
    ("weights_file", "../model.safetensors", "'weights_file' must name a file inside the model folder"),
    ("metrics", {"dice": "high"}, "metric 'dice' must be a finite number"),
    ("metrics", [0.9], "'metrics' must be an object"),
    ("parameters", {"trainable": -1}, "parameters.trainable must be a non-negative whole number"),
    ("parameters", {"trainable": 1.5}, "parameters.trainable must be a non-negative whole number"),
    ("parent", {"name": "x", "version": "1", "weights_sha256": 3}, "(parent): 'weights_sha256' must be"),
    ("int8", None, "'int8' must be an object"),
    ("format", "adaqat-model/2", "not an adaqat-model/1 model card"),
    ("confidence_calibration", {"bias_shift": "low"}, "confidence_calibration.bias_shift must be a finite number"),
    ("confidence_calibration", {"images": 8}, "confidence_calibration.bias_shift must be a finite number"),
    ("confidence_calibration", 0.5, "'confidence_calibration' must be an object"),
])
def test_a_card_of_the_wrong_types_is_refused_in_one_line(shipped_copy, key, value, message, capsys):
    card_path = shipped_copy / CARD_FILE
    data = json.loads(card_path.read_text(encoding="utf-8"))
    data[key] = value
    card_path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelCardError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")) as error:
        load_model(str(shipped_copy))
    assert "\n" not in str(error.value) and str(card_path) in str(error.value)
    assert "Traceback" not in capsys.readouterr().err


def test_from_json_refuses_what_is_not_an_object():
    for data in ([1], "card", None, 3):
        with pytest.raises(ModelCardError, match="not a model card"):
            ModelCard.from_json(data, "x/model.json")


def _read_with_deadline(folder, seconds=10.0):
    """read_model_card in a thread: a FIFO that were opened would block it forever."""
    outcome = {}

    def target():
        try:
            outcome["card"] = load_model(str(folder))
        except Exception as error:  # noqa: BLE001 - the test inspects whatever comes out
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reading the model folder hung"
    return outcome.get("error")


def test_a_model_card_that_is_a_fifo_is_refused_without_hanging(shipped_copy):
    (shipped_copy / CARD_FILE).unlink()
    os.mkfifo(shipped_copy / CARD_FILE)
    error = _read_with_deadline(shipped_copy)
    assert isinstance(error, ModelCardError) and "model card is not a regular file" in str(error)


def test_weights_that_are_a_fifo_or_a_link_are_refused(shipped_copy, tmp_path):
    weights = shipped_copy / "model.safetensors"
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(weights, outside)
    weights.symlink_to(outside)  # same bytes, same sha256: refused because it is a link
    error = _read_with_deadline(shipped_copy)
    assert isinstance(error, ModelCardError) and "weights file is a symbolic link" in str(error)
    weights.unlink()
    os.mkfifo(weights)
    error = _read_with_deadline(shipped_copy)
    assert isinstance(error, ModelCardError) and "weights file is not a regular file" in str(error)


def test_a_card_that_is_a_link_is_refused(shipped_copy, tmp_path):
    real = tmp_path / "card.json"
    shutil.move(shipped_copy / CARD_FILE, real)
    (shipped_copy / CARD_FILE).symlink_to(real)
    with pytest.raises(ModelCardError, match="model card is a symbolic link"):
        read_model_card(shipped_copy)


def test_a_card_that_would_be_refused_is_never_written(tmp_path):
    import torch

    from core.models.artifact import write_model_dir

    with pytest.raises(ModelCardError, match="'precision' must be"):
        write_model_dir(tmp_path / "m", {"name": "x", "version": "1", "backbone": "lite_medsam", "precision": "half"},
                        {"w": torch.zeros(2)})
    assert list(tmp_path.iterdir()) == []  # no half-written folder, no staging left behind
