"""A clinic fine-tune continues the active model, adapts its encoder's last block, fits its budget and
never ends worse.

One small real run (the bundled INT8 model continued with the default tail profile on 5 clinic-sample
images, 2 held out) is shared by the assertions about what it writes; a decoder-profile run checks
that its encoder stays bit for bit; a run with learning rates far too high must be measured worse and
therefore not activated. The 50-image, 15-minute runs are the benchmark
(``benchmarks/bench_clinic_finetune.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.models.catalog import active_model, set_active_model
from core.models.loading import bundled_model_dirs
from tests.shared_data import shared_file

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 120
SMALL = ["--max-train-images", "3", "--max-val-images", "2", "--batch-size", "2", "--threads", "2"]


def adaqat(*args, home: Path):
    import os

    env = dict(os.environ, ADAQAT_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "core.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def continued(tmp_path_factory):
    """``adaqat train --from default`` on a few clinic images, with --activate-if-better."""
    manifest = shared_file("clinic-sample", "manifest.csv")
    root = tmp_path_factory.mktemp("clinic")
    started = time.perf_counter()
    result = adaqat("train", "--data", manifest, "--out", root / "run", "--from", "default", "--time-budget", BUDGET_S,
                    "--activate-if-better", *SMALL, home=root / "home")
    return {"result": result, "seconds": time.perf_counter() - started, "out": root / "run", "home": root / "home"}


def test_continued_model_records_its_parent_and_adapts_only_the_encoder_tail(continued):
    """The tail profile trains the last encoder block and the neck: every other encoder tensor is the
    parent's, int8 value for value and scale for scale."""
    from core.training.encoder_tail import TAIL_MODULES

    result = continued["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    model_dir = continued["out"] / "model-int8"
    card = json.loads((model_dir / "model.json").read_text())
    shipped_dir = bundled_model_dirs()["default"]
    shipped = json.loads((shipped_dir / "model.json").read_text())
    assert card["parent"]["name"] == shipped["name"] and card["parent"]["version"] == shipped["version"]
    assert card["parent"]["weights_sha256"] == shipped["weights_sha256"]
    assert card["name"] == shipped["name"] + "-clinic" and card["version"] != shipped["version"]
    assert card["precision"] == "int8" and card["training"]["profile"] == "tail"
    assert card["inference"]["batchnorm_folded"] is True
    new, old = load_file(str(model_dir / "model.safetensors")), load_file(str(shipped_dir / "model.safetensors"))
    assert new.keys() == old.keys()
    head = [k for k in new if k.startswith("image_encoder.") and not k.startswith(TAIL_MODULES)]
    tail = [k for k in new if k.startswith(TAIL_MODULES)]
    assert head and tail and all(torch.equal(new[k], old[k]) for k in head)
    assert any(not torch.equal(new[k], old[k]) for k in tail)  # the last block and the neck did train
    assert any(not torch.equal(new[k], old[k]) for k in new if k.startswith("mask_decoder."))
    assert any("image_encoder.layers.3.blocks.1" in name for name in card["adapter"]["final_rank_pattern"])
    assert not list(continued["out"].glob("*_checkpoint.pt"))  # a finished run leaves no resumable state


def test_continued_model_gets_its_onnx_runtime_form(continued):
    """The clinic's new model runs in ONNX Runtime in the viewer, as the shipped one does."""
    from core.models.loading import load_model_dir

    assert continued["result"].returncode == 0, continued["result"].stderr[-3000:]
    model_dir = continued["out"] / "model-int8"
    card = json.loads((model_dir / "model.json").read_text())
    assert set(card["onnx"]["graphs"]) == {"encoder", "decoder"}
    assert "ONNX Runtime form written" in continued["result"].stderr
    assert load_model_dir(model_dir).runtime == "onnxruntime"
    shipped = json.loads((bundled_model_dirs()["default"] / "model.json").read_text())
    # the encoder changed (its last block): its graph is exported anew, as is the decoder's
    assert card["onnx"]["graphs"]["encoder"]["sha256"] != shipped["onnx"]["graphs"]["encoder"]["sha256"]
    assert card["onnx"]["graphs"]["decoder"]["sha256"] != shipped["onnx"]["graphs"]["decoder"]["sha256"]


def test_decoder_profile_keeps_the_encoder_and_its_graph_bit_for_bit(tmp_path):
    """``--profile decoder`` (the fastest, and the route for backbones the tail cannot split): the exported
    encoder is the parent's, int8 value for value, and its ONNX graph is the parent's own file."""
    manifest = shared_file("clinic-sample", "manifest.csv")
    result = adaqat("train", "--data", manifest, "--out", tmp_path / "run", "--profile", "decoder", "--epochs", "1",
                    "--qat-epochs", "1", *SMALL, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    model_dir = tmp_path / "run" / "model-int8"
    card = json.loads((model_dir / "model.json").read_text())
    shipped_dir = bundled_model_dirs()["default"]
    shipped = json.loads((shipped_dir / "model.json").read_text())
    assert card["training"]["profile"] == "decoder"
    new, old = load_file(str(model_dir / "model.safetensors")), load_file(str(shipped_dir / "model.safetensors"))
    encoder = [k for k in new if k.startswith("image_encoder.")]
    assert encoder and all(torch.equal(new[k], old[k]) for k in encoder)
    assert card["onnx"]["graphs"]["encoder"]["sha256"] == shipped["onnx"]["graphs"]["encoder"]["sha256"]


def test_run_ends_with_the_comparison_and_activates_only_a_better_model(continued):
    result, home = continued["result"], continued["home"]
    comparison = json.loads((continued["out"] / "comparison.json").read_text())
    card = json.loads((continued["out"] / "model-int8" / "model.json").read_text())
    assert card["clinic_comparison"]["better"] == comparison["better"]
    assert comparison["images"] == 2 and len(comparison["per_image"]) == 2
    old, new = comparison["active_model"]["dice_mean"], comparison["new_model"]["dice_mean"]
    assert 0.5 < old < 1 and 0.5 < new < 1 and comparison["better"] == (new > old + 0.001)
    assert "held-out comparison on 2 images of clinic-sample/manifest.csv" in result.stderr
    # two held-out masks are too few to recalibrate the confidence: the shared calibration is kept, and said
    assert "confidence: the shared calibration kept (fewer than 5 scored held-out images)" in result.stderr
    assert "confidence_calibration" not in card
    assert f"{new:.4f}" in result.stderr and "wilcoxon" in result.stderr.lower()
    # images are named by file, and the record says which data the verdict is about
    assert all(row["image"].endswith(".jpg") for row in comparison["per_image"])
    assert comparison["about"]["data"] == "clinic-sample/manifest.csv" and comparison["about"]["scored"] == 2
    assert "per image:" in result.stderr
    for worse in comparison["worse_images"]:
        assert worse["new"] < worse["active"] and worse["image"] in result.stderr
    import os

    os.environ["ADAQAT_HOME"], previous = str(home), os.environ["ADAQAT_HOME"]
    try:
        if comparison["better"]:
            installed = Path(active_model())
            assert installed.parent == home / "models" and (installed / "model.json").is_file()
            assert json.loads((installed / "model.json").read_text())["version"] == card["version"]
        else:
            assert active_model() == "default"
    finally:
        os.environ["ADAQAT_HOME"] = previous


def test_the_plan_fills_the_budget_and_training_was_refitted_to_the_time_left(continued):
    """The plan, not the wall clock (a busy machine is slower; ``bench_clinic_finetune.py`` measures the
    wall clock): phases fill the budget, and before training the epochs were refitted to what was left."""
    assert continued["result"].returncode == 0
    card = json.loads((continued["out"] / "model-int8" / "model.json").read_text())
    plan, replanned = card["training"]["plan"], card["training"]["replanned"]
    assert plan["budget_s"] == BUDGET_S and 0.7 * BUDGET_S <= plan["total_s"] <= BUDGET_S and plan["fits"]
    assert 0 < replanned["training_s"] < BUDGET_S
    assert card["stage1"]["epochs_run"] <= replanned["stage1_epochs"]
    assert card["qat"]["epochs_run"] <= max(replanned["stage2_epochs"], 1)


def test_a_budget_too_short_is_refused_before_training_and_says_what_fits(tmp_path):
    manifest = shared_file("clinic-sample", "manifest.csv")
    result = adaqat("train", "--data", manifest, "--out", tmp_path / "run", "--time-budget", 20, *SMALL,
                    home=tmp_path / "home")
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "a 20 s budget is too short for" in line and "give a budget of" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "model-int8").exists()


def test_a_manifest_without_val_trains_on_a_held_out_share_of_train(tmp_path):
    """train/test splits only: a share of train is held out, never trained on, and the run compares on it."""
    import csv

    from core.io.manifest import read_manifest

    manifest = read_manifest(shared_file("clinic-sample", "manifest.csv"))
    path = tmp_path / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "mask", "split"])
        for sample in manifest.split("train")[:5]:
            writer.writerow([sample.id, sample.image, sample.mask, "train"])
        for sample in manifest.split("val")[:2]:
            writer.writerow([sample.id, sample.image, sample.mask, "test"])
    result = adaqat("train", "--data", path, "--out", tmp_path / "run", "--epochs", "1", "--qat-epochs", "1",
                    "--batch-size", "2", "--threads", "2", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no val split: 2 of the training images held out" in result.stderr
    comparison = json.loads((tmp_path / "run" / "comparison.json").read_text())
    held_out = {row["id"] for row in comparison["per_image"]}
    assert held_out == {s.id for s in manifest.split("train")[3:5]} and comparison["images"] == 2
    card = json.loads((tmp_path / "run" / "model-int8" / "model.json").read_text())
    assert card["training"]["train_images"] == 3 and card["training"]["heldout_images"] == 2


def mislabelled_manifest(folder: Path, train_images: int = 3, val_images: int = 2) -> Path:
    """Clinic images whose training masks are inverted (background marked as lung), true masks held out:
    every epoch trained on them is worse than the parent, so the run can only keep the parent."""
    import csv

    import cv2

    from core.io.manifest import read_manifest

    manifest = read_manifest(shared_file("clinic-sample", "manifest.csv"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "mask", "split"])
        for sample in manifest.split("train")[:train_images]:
            wrong = folder / f"{sample.id}-inverted.png"
            cv2.imwrite(str(wrong), 255 - cv2.imread(str(sample.mask), cv2.IMREAD_GRAYSCALE))
            writer.writerow([sample.id, sample.image, wrong, "train"])
        for sample in manifest.split("val")[:val_images]:
            writer.writerow([sample.id, sample.image, sample.mask, "val"])
    return path


def test_a_worse_model_is_reported_and_not_activated(tmp_path):
    """Mislabelled training masks: no epoch beats the parent on the selection images, so the run keeps the
    parent's decoder, measures no gain and keeps the active model."""
    home = tmp_path / "home"
    manifest = mislabelled_manifest(tmp_path / "data")
    result = adaqat("train", "--data", manifest, "--out", tmp_path / "run", "--time-budget", 150, "--activate-if-better",
                    "--batch-size", "2", "--threads", "2", "--lr-adapter", "0.05", "--lr-base", "0.05", "--qat-lr", "0.02",
                    home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    comparison = json.loads((tmp_path / "run" / "comparison.json").read_text())
    assert comparison["better"] is False, result.stderr[-3000:]
    assert comparison["new_model"]["dice_mean"] <= comparison["active_model"]["dice_mean"] + 0.002  # INT8 re-export noise only
    card = json.loads((tmp_path / "run" / "model-int8" / "model.json").read_text())
    assert card["stage1"]["best_epoch"] == 0  # every mislabelled epoch was refused
    assert "the active model stays" in result.stderr
    assert not (home / "models" / "active.json").exists()


def test_estimate_prints_a_plan_that_fills_the_budget(tmp_path):
    manifest = shared_file("clinic-sample", "manifest.csv")
    result = adaqat("train", "--data", manifest, "--out", tmp_path / "run", "--estimate", "--time-budget", 600,
                    "--progress-json", "--threads", "2", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    estimate = json.loads(result.stdout.strip().splitlines()[-1])
    assert estimate["stage"] == "estimate" and estimate["budget_s"] == 600
    assert estimate["views"] >= 1 and estimate["stage1_epochs"] >= 1 and estimate["stage2_epochs"] >= 1
    phases = estimate["phases_s"]
    assert set(phases) >= {"preparation", "baseline check", "stage 1", "stage 2", "export and final check"}
    if not estimate["fits"]:  # a busy machine: the smallest run is planned, and it says it does not fit
        assert (estimate["views"], estimate["stage1_epochs"], estimate["stage2_epochs"]) == (1, 1, 1)
        assert estimate["total_s"] > 600
        return
    # the plan fills the budget up to one more epoch of each stage (whole epochs; on a busy machine one is long)
    one_more = phases["stage 1"] / estimate["stage1_epochs"] + phases["stage 2"] / estimate["stage2_epochs"]
    assert 600 - max(0.15 * 600, one_more) <= estimate["total_s"] <= 600 * 1.05
    assert not (tmp_path / "run" / "model-int8").exists()  # an estimate writes no model


def test_profile_choice_and_its_errors():
    from core.training.config import TrainConfig, resolve_profile

    assert resolve_profile(TrainConfig()) == "tail"
    assert resolve_profile(TrainConfig(profile="decoder")) == "decoder"
    assert resolve_profile(TrainConfig(from_model="lite_medsam")) == "full"
    assert resolve_profile(TrainConfig(base_weights="sam.pth", backbone="sam_vit_b")) == "full"
    with pytest.raises(ValueError, match="full profile trains from base weights"):
        resolve_profile(TrainConfig(from_model="default", profile="full"))
    with pytest.raises(ValueError, match="decoder profile continues a trained model"):
        resolve_profile(TrainConfig(from_model="lite_medsam", profile="decoder"))
    with pytest.raises(ValueError, match="tail profile continues a trained model"):
        resolve_profile(TrainConfig(from_model="lite_medsam", profile="tail"))


def test_from_defaults_to_the_active_model(tmp_path, monkeypatch):
    from core.training.parent import load_parent

    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path))
    assert load_parent(None)[1].name == "cxr-lungs-adaqat"  # fresh install: the shipped model
    set_active_model("lite_medsam")
    assert load_parent(None)[1].name == "lite_medsam" and load_parent("active")[1].name == "lite_medsam"


def test_plan_fills_the_budget_and_grows_with_it():
    from core.training.run_plan import Measurements, plan_fast_run

    m = Measurements(setup_s=20, encode_s_per_image=1.0, eval_s_per_image=1.5, stage1_step_s=2.0, stage2_step_s=2.6)
    small, large = (plan_fast_run(m, 30, 5, 15, 8, budget) for budget in (300, 900))
    for plan, budget in ((small, 300), (large, 900)):
        assert 0.85 * budget <= plan.total_s <= budget
    assert large.views * large.stage1_epochs > small.views * small.stage1_epochs  # more passes over the images
    unbounded = plan_fast_run(m, 30, 5, 15, 8, None, default_views=4, default_epochs=40)
    assert unbounded.views == 4 and unbounded.stage1_epochs == 40 and unbounded.total_s > 0
