"""Issue 14 (beyond one machine): ``adaqat train`` data-parallel under torchrun, on CPU with gloo.

Two processes train the tiny test ViT (``tests.tiny_vit_train``: ``core.cli`` with ``sam_vit_b``
built small) on 8 real cxr-lungs images, global batch 4 (2 per process); the reference is the same
run in one process with batch 4. One uninterrupted two-process run (both stages), one stopped by
SIGTERM after its first checkpoint and resumed (stage 1). About a minute on an idle 2-core machine,
mostly interpreter starts (each process imports torch, peft and the model code).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.shared_data import shared_file

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 4


def common_args(manifest: Path, stages: str) -> list[str]:
    return ["train", "--data", str(manifest), "--backbone", "sam_vit_b", "--stages", stages, "--epochs", str(EPOCHS),
            "--qat-epochs", "1", "--max-train-images", "8", "--max-val-images", "2", "--no-augment", "--threads", "1"]


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "tests.tiny_vit_train", *args]


def single_process_run(manifest: Path, out: Path) -> None:
    """The reference, in this process (saves an interpreter start): batch 4 = the two-process global batch."""
    from core.cli import main
    from core.models import sam_vit

    previous_handler, previous_threads = signal.getsignal(signal.SIGTERM), torch.get_num_threads()
    saved = sam_vit.VARIANTS["sam_vit_b"]
    sam_vit.VARIANTS["sam_vit_b"] = sam_vit.TINY_TEST_CONFIG
    try:
        assert main([*common_args(manifest, "both"), "--batch-size", "4", "--out", str(out)]) == 0
    finally:
        sam_vit.VARIANTS["sam_vit_b"] = saved
        signal.signal(signal.SIGTERM, previous_handler)
        torch.set_num_threads(previous_threads)


def interrupted_run(manifest: Path, out: Path) -> subprocess.CompletedProcess:
    """Two processes, SIGTERM to torchrun as soon as the first epoch's checkpoint exists (a preempted job)."""
    process = subprocess.Popen(torchrun(*common_args(manifest, "1"), "--batch-size", "2", "--out", str(out)), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "stage1_checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    manifest = shared_file("cxr-lungs", "manifest.csv")
    root = tmp_path_factory.mktemp("ddp")
    single_process_run(manifest, root / "single")
    ddp = subprocess.run(torchrun(*common_args(manifest, "both"), "--batch-size", "2", "--out", str(root / "ddp")),
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    interrupted = interrupted_run(manifest, root / "resumed")
    checkpoint = torch.load(root / "resumed" / "stage1_checkpoint.pt", weights_only=True)
    resumed = subprocess.run(torchrun(*common_args(manifest, "1"), "--batch-size", "2", "--out", str(root / "resumed"),
                                      "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    return {"root": root, "ddp": ddp, "interrupted": interrupted, "checkpoint": checkpoint, "resumed": resumed}


def card(root: Path, run: str, model: str) -> dict:
    return json.loads((root / run / model / "model.json").read_text())


def fields(value, prefix: str = "") -> set[str]:
    """Every key path of a card (list items merged): the layout, not the values."""
    if isinstance(value, dict):
        return {prefix} | set().union(*(fields(v, f"{prefix}.{k}") for k, v in value.items())) if value else {prefix}
    if isinstance(value, list):
        return {prefix} | set().union(*(fields(v, f"{prefix}[]") for v in value)) if value else {prefix}
    return {prefix}


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_two_processes_exit_cleanly_and_write_one_set_of_outputs(runs):
    ddp, root = runs["ddp"], runs["root"]
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "Traceback" not in ddp.stderr and "error:" not in ddp.stderr
    assert files(root / "ddp") == files(root / "single")  # model-fp32/, model-int8/ (with its ONNX form), no checkpoints
    assert ddp.stdout.count("fp32 model:") == 1 and ddp.stdout.count("int8 model:") == 1  # rank 1 prints nothing
    assert ddp.stderr.count(f"epoch {EPOCHS}/{EPOCHS}") and ddp.stderr.count("val Dice") == EPOCHS + 1  # one progress


@pytest.mark.parametrize("model", ["model-fp32", "model-int8"])
def test_model_cards_have_the_single_process_fields(runs, model):
    root = runs["root"]
    single, ddp = card(root, "single", model), card(root, "ddp", model)
    assert fields(ddp) == fields(single)
    for key in ("name", "backbone", "backbone_config", "precision", "method", "parameters", "base_weights_sha256"):
        assert ddp[key] == single[key], key
    assert {k: v for k, v in ddp["adapter"].items() if not k.startswith("final_")} == \
           {k: v for k, v in single["adapter"].items() if not k.startswith("final_")}
    train_ddp, train_single = ddp["training"], single["training"]
    assert (train_ddp["processes"], train_single["processes"]) == (2, 1)
    global_batch = [t["processes"] * t["config"]["batch_size"] for t in (train_ddp, train_single)]
    assert global_batch == [4, 4]
    assert train_ddp["train_images"] == train_single["train_images"] == 8 and train_ddp["epochs"] == EPOCHS
    if model == "model-int8":
        assert ddp["int8"]["layers"] == single["int8"]["layers"] and ddp["qat"]["epochs"] == single["qat"]["epochs"]


def test_loss_decreases_and_follows_the_single_process_run(runs):
    ddp = card(runs["root"], "ddp", "model-fp32")["training"]["history"]
    single = card(runs["root"], "single", "model-fp32")["training"]["history"]
    assert len(ddp) == EPOCHS and ddp[-1]["loss"] < ddp[0]["loss"]
    # same global batch, same steps: the averaged gradients follow the one-process run (other batch grouping)
    assert all(abs(a["loss"] - b["loss"]) < 0.02 and abs(a["val_dice"] - b["val_dice"]) < 0.02 for a, b in zip(ddp, single))


def test_rank_pattern_is_identical_on_every_process(runs):
    """Each process's rank pattern checksum is gathered at the end of stage 1; rank 0 reports the common one."""
    from core.training.distributed import digest

    written = card(runs["root"], "ddp", "model-fp32")["adapter"]["final_rank_pattern"]
    assert len(set(written.values())) > 1  # AdaLoRA did reallocate: not every module kept the same rank
    line = next(line for line in runs["ddp"].stderr.splitlines() if line.startswith("rank pattern identical"))
    assert line == f"rank pattern identical on 2 processes (sha256 {digest(written)}); weights identical"


def test_resume_after_sigterm_continues_exactly(runs):
    interrupted, resumed, root = runs["interrupted"], runs["resumed"], runs["root"]
    assert interrupted.returncode != 0 and interrupted.stderr.count("cancelled at epoch") == 2  # both, same epoch
    assert 1 <= runs["checkpoint"]["epoch"] < EPOCHS
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again, straight = card(root, "resumed", "model-fp32"), card(root, "ddp", "model-fp32")
    assert again["training"]["history"][: runs["checkpoint"]["epoch"]] == runs["checkpoint"]["history"]
    for a, b in zip(again["training"]["history"], straight["training"]["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5) and a["val_dice"] == pytest.approx(b["val_dice"], abs=1e-5)
    assert again["adapter"]["final_rank_pattern"] == straight["adapter"]["final_rank_pattern"]
    new, old = (load_file(str(root / run / "model-fp32" / "model.safetensors")) for run in ("resumed", "ddp"))
    assert all(torch.allclose(new[k], old[k], atol=1e-5) for k in old)


def test_differing_rank_patterns_stop_every_process(tmp_path):
    """The agreement check is not vacuous: ranks 4 and 5 for the same module fail on both processes."""
    import torch.multiprocessing as mp

    from tests.tiny_vit_train import mismatch_worker

    context = mp.get_context("spawn")
    queue = context.Queue()
    store = str(tmp_path / "store")
    workers = [context.Process(target=mismatch_worker, args=(rank, store, queue)) for rank in range(2)]
    for worker in workers:
        worker.start()
    results = dict(queue.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    assert all("the AdaLoRA rank pattern differs between processes" in results[rank] for rank in (0, 1)), results


def test_the_decoder_profile_is_refused_under_torchrun(monkeypatch, tmp_path):
    from core.training import distributed
    from core.training.config import TrainConfig
    from core.training.pipeline import train

    monkeypatch.setattr(distributed, "_context", distributed.Context(rank=0, world_size=2))
    with pytest.raises(ValueError, match="under torchrun train the full profile"):
        train(tmp_path / "none.csv", tmp_path / "out", TrainConfig())
