"""``adaqat`` end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.shared_data import shared_file

ROOT = Path(__file__).resolve().parents[1]


def adaqat(*args, cwd=ROOT, timeout=900):
    return subprocess.run([sys.executable, "-m", "core.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_segment_real_dicom_writes_a_full_size_lung_mask(tmp_path):
    source = shared_file("dicom", "RG1_UNCR.dcm")
    result = adaqat("segment", source, "--out", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(record) == {"input", "output", "lung_fraction", "seconds", "model", "runtime", "activation_bits",
                           "confidence", "flags", "flag_reasons"}
    assert 0.0 <= record["confidence"] <= 1.0 and len(record["flags"]) == len(record["flag_reasons"])
    assert record["runtime"] == "onnxruntime"
    from core.models.onnx_activations import activation_bits_for_this_cpu

    assert record["activation_bits"] == activation_bits_for_this_cpu()  # 8 with VNNI/AMX, else 7
    mask = cv2.imread(record["output"], cv2.IMREAD_UNCHANGED)
    assert Path(record["output"]).name == "RG1_UNCR.png"
    assert mask.shape == (1955, 1841)  # rows x columns of the DICOM: a 1841-wide, 1955-high image
    assert set(cv2.countNonZero(mask) and [0, 255]) and set(map(int, set(mask.ravel()))) <= {0, 255}
    assert 0.15 < record["lung_fraction"] < 0.6
    assert "Traceback" not in result.stderr


def test_bad_inputs_give_one_line_each_and_do_not_stop_the_batch(tmp_path):
    source = shared_file("dicom", "RG1_UNCR.dcm")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(source.read_bytes()[: 2_000_000])
    good = shared_file("cxr-lungs", "images", "006ce2a73b.jpg")
    result = adaqat("segment", truncated, good, tmp_path / "missing.png", "--out", tmp_path / "out")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert any("truncated.dcm" in line and "truncated" in line.split("truncated.dcm", 1)[1] for line in errors)
    assert any("missing.png" in line for line in errors)
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out" / "006ce2a73b.png").is_file()


def test_unknown_model_is_a_clear_error(tmp_path):
    result = adaqat("segment", shared_file("cxr-lungs", "images", "006ce2a73b.jpg"), "--out", tmp_path, "--model", "nope")
    assert result.returncode == 2 and "error: nope: no such model name or path" in result.stderr


@pytest.mark.slow
def test_train_four_images_one_epoch_then_evaluate_three(tmp_path):
    """Issue 3's done-when, on this CPU: a real (tiny) stage-1 run and an evaluation with the result."""
    manifest = shared_file("cxr-lungs", "manifest.csv")
    out = tmp_path / "run"
    trained = adaqat("train", "--data", manifest, "--out", out, "--from", "lite_medsam", "--stages", "1", "--epochs", "1", "--batch-size", "2",
                     "--max-train-images", "4", "--max-val-images", "2", "--threads", "2")
    assert trained.returncode == 0, trained.stderr[-2000:]
    card = json.loads((out / "model-fp32" / "model.json").read_text())
    assert card["training"]["train_images"] == 4 and card["adapter"]["final_rank_pattern"]
    assert all(isinstance(rank, int) for rank in card["adapter"]["final_rank_pattern"].values())
    assert card["parameters"]["full_finetune"] / card["parameters"]["trainable"] >= 16
    assert card["base_weights_sha256"] and "patient" not in json.dumps(card).lower()
    evaluated = adaqat("evaluate", "--model", out / "model-fp32", "--data", manifest, "--split", "test", "--limit", "3",
                       "--json", "--compare", "lite_medsam")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads(evaluated.stdout)
    assert [len(m["per_image"]) for m in report["models"]] == [3, 3]
    assert 0.0 <= report["models"][0]["summary"]["dice"]["mean"] <= 1.0
    assert report["comparison"]["n"] == 3


@pytest.mark.slow
def test_train_both_stages_leaves_fp32_and_a_real_int8_model(tmp_path):
    """Stage 1 then QAT (torchao prepare/convert) then INT8 export, on two real images, on this CPU."""
    manifest = shared_file("cxr-lungs", "manifest.csv")
    out = tmp_path / "run"
    trained = adaqat("train", "--data", manifest, "--out", out, "--from", "lite_medsam", "--stages", "both",
                     "--epochs", "1", "--qat-epochs", "1", "--batch-size", "2", "--max-train-images", "2", "--max-val-images", "1", "--threads", "2")
    assert trained.returncode == 0, trained.stderr[-2000:]
    int8_card = json.loads((out / "model-int8" / "model.json").read_text())
    fp32_card = json.loads((out / "model-fp32" / "model.json").read_text())
    assert int8_card["precision"] == "int8" and int8_card["qat"]["quantised_linear_layers"] > 50
    assert int8_card["stage1_model"]["weights_sha256"] == fp32_card["weights_sha256"]
    size_ratio = (out / "model-fp32" / "model.safetensors").stat().st_size / (out / "model-int8" / "model.safetensors").stat().st_size
    assert size_ratio > 2.5
    assert not list(out.glob("*_checkpoint.pt"))  # the INT8 model is final: no checkpoints left beside it
    segmented = adaqat("segment", shared_file("cxr-lungs", "images", "006ce2a73b.jpg"), "--out", tmp_path / "m",
                       "--model", out / "model-int8", "--json")
    assert segmented.returncode == 0 and "INT8" in json.loads(segmented.stdout)["model"]
