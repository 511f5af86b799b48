"""Training that goes wrong leaves the model registry as it was and tells the user why.

tests/test_training.py covers NaN loss; here: an exploding (finite) loss, GPU out-of-memory (no GPU
here, so ``torch.cuda.OutOfMemoryError`` is raised from the model's forward, where CUDA raises it),
and cancelled or crashed runs of the real pipeline on real data, checked against the output folder
the viewer and ``--model`` load models from. Disk-full while saving is in test_reliability_store.py.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
import torch

from core.models import sam_vit
from core.models.artifact import write_model_dir
from core.models.loading import load_model
from core.models.segmenter import PromptableSegmenter
from core.training.dataset import SegmentationDataset
from core.training.example_loading import load_examples
from core.training.loop import LoopConfig, StageHooks, TrainingLoop
from core.io.manifest import read_manifest
from core.training.config import FP32_DIR, INT8_DIR, TrainConfig
from core.training.pipeline import train
from core.training.progress import TrainingCancelled, TrainingDiverged, TrainingOutOfMemory
from tests.shared_data import shared_file

TINY_CARD = {"name": "previous", "backbone": "sam_vit_b", "precision": "fp32",
             "backbone_config": sam_vit.TINY_TEST_CONFIG.to_json()}


@pytest.fixture(scope="module")
def manifest():
    return shared_file("cxr-lungs", "manifest.csv")


@pytest.fixture(scope="module")
def examples(manifest):
    found, problems = load_examples(read_manifest(manifest).split("train")[:2], 256)
    assert not problems
    return found


def tiny_loop(examples, tmp_path, batch_size=2, **kwargs) -> TrainingLoop:
    torch.manual_seed(0)
    model = sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return TrainingLoop("stage1", model, optimizer, SegmentationDataset(examples, train=False),
                        SegmentationDataset(examples[:1], train=False), LoopConfig(epochs=2, batch_size=batch_size),
                        tmp_path / "ckpt.pt", **kwargs)


def cuda_out_of_memory(*_args, **_kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity)")


def folder_digest(folder) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), hidden staging folders included."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def previous_model(out):
    """A model from an earlier run, where the new run will write its own."""
    written = write_model_dir(out / FP32_DIR, dict(TINY_CARD, version="1"),
                              sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG).state_dict())
    return written, folder_digest(written)


def model_dirs(out) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir())


# --- the loop ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1e6, float("inf")])
def test_exploding_loss_stops_with_a_message(examples, tmp_path, value):
    hooks = StageHooks(extra_loss=lambda: torch.tensor(value))
    with pytest.raises(TrainingDiverged, match=r"stage1: loss became .* at step 1; lower the learning rate"):
        tiny_loop(examples, tmp_path, hooks=hooks).run()
    assert not (tmp_path / "ckpt.pt").exists()


@pytest.mark.parametrize("batch_size, advice", [(2, "--batch-size 1 or --device cpu"), (1, "--device cpu")])
def test_gpu_out_of_memory_in_a_step_says_what_to_do(examples, tmp_path, monkeypatch, batch_size, advice):
    loop = tiny_loop(examples, tmp_path, batch_size=batch_size)
    monkeypatch.setattr(type(loop.model), "forward", cuda_out_of_memory)
    with pytest.raises(TrainingOutOfMemory) as info:
        loop.run()
    assert str(info.value) == f"stage1: GPU out of memory at batch size {batch_size}; retry with {advice}"
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no CUDA traceback attached
    assert all(p.grad is None for p in loop.model.parameters())  # the failed step's memory is released
    assert not (tmp_path / "ckpt.pt").exists()


def test_gpu_out_of_memory_in_validation_says_what_to_do(examples, tmp_path, monkeypatch):
    loop = tiny_loop(examples, tmp_path)
    monkeypatch.setattr(type(loop.model), "forward", cuda_out_of_memory)
    with pytest.raises(TrainingOutOfMemory, match=r"^stage1: GPU out of memory at batch size 2; retry with --batch-size 1"):
        loop.validate()


# --- the real pipeline and the command line ------------------------------------------------------

TINY_RUN = dict(from_model="lite_medsam", max_train_images=2, max_val_images=1, epochs=2, batch_size=2, stages="1", augment=False)


def test_cancelled_run_leaves_the_registry_as_it_was(manifest, tmp_path):
    """A real stage-1 run (LiteMedSAM, 2 images), cancelled after its first progress event."""
    out = tmp_path / "run"
    out.mkdir()
    written, digest = previous_model(out)
    cancel = threading.Event()
    events = []

    def cancel_after_first_event(event):
        events.append(event)
        cancel.set()

    with pytest.raises(TrainingCancelled, match="cancelled at epoch 2; resume with --resume"):
        train(manifest, out, TrainConfig(**TINY_RUN), progress=cancel_after_first_event, cancel=cancel)
    assert events
    assert (out / "stage1_checkpoint.pt").is_file()  # kept for --resume: not a model, never loaded as one
    assert model_dirs(out) == [FP32_DIR] and folder_digest(written) == digest  # no new model, old one intact
    assert load_model(str(written)).info.version == "1"
    assert not (out / INT8_DIR).exists()


@pytest.mark.parametrize("failure", ["crash", "out-of-memory"])
def test_failed_run_leaves_the_registry_as_it_was(manifest, tmp_path, monkeypatch, capsys, failure):
    """A crash inside the model (any exception) and a GPU OOM, through ``adaqat train`` itself."""
    from core.cli import main

    out = tmp_path / "run"
    out.mkdir()
    written, digest = previous_model(out)
    if failure == "crash":
        monkeypatch.setattr(PromptableSegmenter, "forward", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            train(manifest, out, TrainConfig(**TINY_RUN))
    else:
        monkeypatch.setattr(PromptableSegmenter, "forward", cuda_out_of_memory)
        code = main(["train", "--data", str(manifest), "--out", str(out), "--from", "lite_medsam", "--stages", "1", "--epochs", "2",
                     "--batch-size", "2", "--max-train-images", "2", "--max-val-images", "1", "--no-augment"])
        err = capsys.readouterr().err
        assert code == 4
        assert [line for line in err.splitlines() if line.startswith("error:")] == [
            "error: stage1: GPU out of memory at batch size 2; retry with --batch-size 1 or --device cpu"]
        assert "Traceback" not in err
    monkeypatch.undo()
    assert model_dirs(out) == [FP32_DIR] and folder_digest(written) == digest
    assert load_model(str(written)).info.version == "1"


# --- a checkpoint that cannot be written ----------------------------------------------------------


@pytest.mark.parametrize("free_bytes, expected", [
    (10 << 20, r"\[Errno 28\] No space left on device: '.*ckpt.pt'"),
    (50 << 30, r"\[Errno 5\] the write was cut short \(disk full, quota or file size limit\): '.*ckpt.pt'"),
])
def test_a_checkpoint_that_cannot_be_written_is_a_clear_oserror(examples, tmp_path, monkeypatch, free_bytes, expected):
    """torch.save reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc:672] .
    unexpected pos 576 vs 534`` (seen on a full 1 MB tmpfs and under RLIMIT_FSIZE); the loop turns it
    into an OSError that ``adaqat train`` prints as one line, and leaves no partial file."""
    import shutil
    from collections import namedtuple

    import core.training.loop as loop_module

    def cut_short(payload, path, *args, **kwargs):
        open(path, "wb").write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(loop_module.torch, "save", cut_short)
    monkeypatch.setattr(loop_module.shutil, "disk_usage", lambda path: usage(1 << 40, 0, free_bytes))
    with pytest.raises(OSError, match=expected):
        tiny_loop(examples, tmp_path).run()
    monkeypatch.undo()
    assert shutil.disk_usage(tmp_path).free > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no checkpoint, no .partial
