"""Training engine pieces on real data: manifest checks, losses, augmentation, adapters, loop control."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest
import torch

from core.models.registry import build_backbone
from core.training.adapters import AdapterConfig, add_adapters, count_parameters
from core.training.augment import AugmentConfig, augment
from core.training.dataset import SegmentationDataset
from core.training.example_cache import load_example_cache, save_example_cache
from core.training.example_loading import load_examples
from core.training.loop import LoopConfig, StageHooks, TrainingLoop
from core.training.losses import batch_dice, bce_dice_loss
from core.io.manifest import ManifestError, read_manifest
from core.training.progress import TrainingCancelled, TrainingDiverged
from tests.shared_data import shared_file


@pytest.fixture(scope="module")
def real_examples():
    manifest = read_manifest(shared_file("cxr-lungs", "manifest.csv"))
    examples, problems = load_examples(manifest.split("train")[:4], 256)
    assert not problems
    return examples


def test_bad_manifest_rows_are_reported_and_skipped(tmp_path):
    data = shared_file("cxr-lungs")
    empty_mask = tmp_path / "empty.png"
    import cv2

    image = cv2.imread(str(data / "images" / "006ce2a73b.jpg"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(empty_mask), np.zeros_like(image))
    small_mask = tmp_path / "small.png"
    cv2.imwrite(str(small_mask), np.full((10, 10), 255, np.uint8))
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "mask", "split"])
        writer.writerow(["ok", data / "images" / "006ce2a73b.jpg", data / "masks" / "006ce2a73b.png", "train"])
        writer.writerow(["missing", "nope.jpg", data / "masks" / "006ce2a73b.png", "train"])
        writer.writerow(["empty", data / "images" / "006ce2a73b.jpg", empty_mask, "train"])
        writer.writerow(["size", data / "images" / "006ce2a73b.jpg", small_mask, "train"])
    parsed = read_manifest(manifest)
    assert len(parsed.problems) == 1 and "manifest.csv:3: image file not found" in parsed.problems[0]
    examples, problems = load_examples(parsed.split("train"), 256)
    assert [e.id for e in examples] == ["ok"]
    assert any("row 4 (empty)" in p and "no lung pixels" in p for p in problems)
    assert any("row 5 (size)" in p and "does not match image" in p for p in problems)


def test_manifest_without_required_columns_is_refused(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,image\n1,a.png\n")
    with pytest.raises(ManifestError, match="lacks column"):
        read_manifest(path)


def test_loss_ignores_the_ignore_region():
    target = torch.zeros(1, 1, 8, 8)
    target[..., :4] = 1
    valid = torch.ones_like(target)
    valid[..., 6:] = 0  # ignore two columns
    good = torch.where(target > 0, 10.0, -10.0)
    wrong_in_ignore = good.clone()
    wrong_in_ignore[..., 6:] = 10.0
    assert torch.isclose(bce_dice_loss(good, target, valid), bce_dice_loss(wrong_in_ignore, target, valid))
    assert batch_dice(wrong_in_ignore, target, valid).item() == pytest.approx(1.0)
    assert bce_dice_loss(-good, target, valid) > bce_dice_loss(good, target, valid) + 1


def test_augmentation_keeps_mask_labels_and_is_reproducible(real_examples):
    example = real_examples[0]
    image = torch.from_numpy(example.image).float()[None]
    mask = torch.from_numpy(example.mask)[None]
    a = augment(image, mask, np.random.default_rng(1), AugmentConfig())
    b = augment(image, mask, np.random.default_rng(1), AugmentConfig())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert set(torch.unique(a[1]).tolist()) <= {0, 127, 255}
    assert 0.5 < (a[1] == 255).sum() / (mask == 255).sum() < 1.5


def test_example_cache_round_trip(tmp_path, real_examples):
    save_example_cache(tmp_path / "c.npz", {"train": real_examples})
    loaded = load_example_cache(tmp_path / "c.npz")["train"]
    assert [e.id for e in loaded] == [e.id for e in real_examples]
    assert all(np.array_equal(a.image, b.image) and a.region_hw == b.region_hw for a, b in zip(loaded, real_examples))


@pytest.mark.parametrize("policy,min_reduction", [("everywhere", 16.0), ("paper", 2.0)])
def test_adapter_policies_train_what_they_say(policy, min_reduction):
    model = build_backbone("lite_medsam", "pretrained")
    full = sum(p.numel() for p in model.parameters())
    add_adapters(model, AdapterConfig(policy=policy), total_steps=100)
    trainable, _ = count_parameters(model)
    assert full / trainable >= min_reduction
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("image_encoder" in n and "qkv.lora_A" in n for n in names)
    assert not any(n.startswith("image_encoder") and "lora_" not in n for n in names)
    decoder_base = [n for n in names if n.startswith("mask_decoder") and "lora_" not in n]
    if policy == "paper":
        assert "mask_decoder.transformer.layers.0.mlp.lin1.base_layer.weight" not in names
        assert any("mlp.lin1" in n for n in decoder_base)
    else:
        assert not any(n.endswith(".weight") and "norm" not in n and "token" not in n for n in decoder_base)


def _tiny_loop(real_examples, tmp_path, epochs=2, **kwargs):
    torch.manual_seed(0)
    from core.models import sam_vit

    model = sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    train = SegmentationDataset(real_examples, train=True, seed=3)
    val = SegmentationDataset(real_examples[:2], train=False)
    return TrainingLoop("test", model, optimizer, train, val, LoopConfig(epochs=epochs, batch_size=2),
                        tmp_path / "ckpt.pt", **kwargs)


def test_resume_after_interruption_matches_an_uninterrupted_run(real_examples, tmp_path):
    straight = _tiny_loop(real_examples, tmp_path / "a").run()
    cancel = threading.Event()
    events = []

    def stop_after_first_epoch(event):
        events.append(event)
        if event.val_dice is not None:
            cancel.set()

    with pytest.raises(TrainingCancelled, match="resume"):
        _tiny_loop(real_examples, tmp_path / "b", progress=stop_after_first_epoch, cancel=cancel).run()
    assert events and all(e.eta_seconds is not None for e in events)
    resumed = _tiny_loop(real_examples, tmp_path / "b").run(resume=True)
    assert [round(h["loss"], 5) for h in resumed.history] == [round(h["loss"], 5) for h in straight.history]
    assert all(torch.allclose(resumed.best_state[k], straight.best_state[k], atol=1e-6) for k in straight.best_state)


def test_nan_loss_stops_with_a_message(real_examples, tmp_path):
    hooks = StageHooks(extra_loss=lambda: torch.tensor(float("nan")))
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        _tiny_loop(real_examples, tmp_path, hooks=hooks).run()
    assert not (tmp_path / "ckpt.pt").exists()


def test_annotation_store_feeds_training_with_reviewed_images_only(tmp_path):
    import cv2

    from core.io import load_study
    from core.store import AnnotationStore, image_key_for
    from core.training.store_source import examples_from_store

    data = shared_file("cxr-lungs")
    statuses = {"006ce2a73b": "accepted", "007bef113c": "corrected", "00da69e190": "rejected", "02b2706dd2": None}
    with AnnotationStore(tmp_path / "store") as store:
        for image_id, status in statuses.items():
            study = load_study(data / "images" / f"{image_id}.jpg")
            key = image_key_for(study)
            store.register_image(study)
            mask = cv2.imread(str(data / "masks" / f"{image_id}.png"), cv2.IMREAD_GRAYSCALE)
            store.save_mask(key, np.where(mask == 255, 255, 0).astype(np.uint8), source="edit", reader="tester")
            if status:
                store.set_review(key, status, reader="tester")
    splits, problems = examples_from_store(tmp_path / "store", 256)
    used = splits["train"] + splits["val"]
    assert len(used) == 2 and not problems
    assert all(e.image.shape == (256, 256) and (e.mask == 255).any() for e in used)
    assert all(not e.id.endswith(".jpg") for e in used)  # short store references, not file names


def test_time_budget_calibration_leaves_the_model_untouched(real_examples):
    import copy

    from core.training.budget import epochs_within, seconds_per_step

    model = build_backbone("lite_medsam", "pretrained")
    trial = copy.deepcopy(model)
    add_adapters(trial, AdapterConfig(), total_steps=100)
    before = {k: v.clone() for k, v in trial.state_dict().items() if "running" in k}
    step = seconds_per_step(trial, SegmentationDataset(real_examples, train=True), 2, "cpu")
    assert step > 0
    assert all(torch.equal(v, trial.state_dict()[k]) for k, v in before.items())  # BatchNorm statistics unchanged
    assert epochs_within(100.0, step_s=1.0, train_size=10, val_size=3, batch_size=2, max_epochs=40) == 16
    assert epochs_within(1.0, step_s=10.0, train_size=10, val_size=3, batch_size=2, max_epochs=40) == 1


def test_adaptive_adapters_attach_to_every_vit_attention_block():
    from core.models import sam_vit

    model = sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG)
    wrapped = add_adapters(model, AdapterConfig(policy="everywhere", init_r=4, target_r=2), total_steps=20)
    adapted = [n for n, m in model.named_modules() if hasattr(m, "lora_E")]
    assert [n for n in adapted if "image_encoder" in n] == [
        f"image_encoder.blocks.{i}.attn.qkv" for i in range(sam_vit.TINY_TEST_CONFIG.depth)
    ]
    assert any("mask_decoder.transformer" in n for n in adapted)
    logits = model(torch.rand(2, 1, 256, 256) * 255, torch.tensor([[0.0, 0.0, 255.0, 255.0]] * 2))
    logits.mean().backward()
    wrapped.update_and_allocate(0)  # every adapter received a gradient
