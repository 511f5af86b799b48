"""Training on several sources: the mixed cache, its sampling weights, and the card's training-data record.

Real images from cxr-lungs and peds-lungs; the end-to-end run trains the tiny test ViT (``sam_vit_b``
built small, as in the distributed-training test) for one epoch on a mixed cache and reads what its
``model.json`` says it learned from, then what ``adaqat models --json`` and the Models window show.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import torch

from core.models.card import CARD_FILE, ModelCardError, TrainingSource, read_model_card
from core.training.example_cache import load_example_cache
from core.training.mixture import (SourceSpec, licence_summary, prepare_mixture, sidecar_path,
                                   training_data_for, weighted_copies)
from tests.shared_data import shared_file



def _manifests() -> tuple[Path, Path]:
    """cxr-lungs and peds-lungs manifests; the calling test skips when the shared data is absent."""
    return shared_file("cxr-lungs", "manifest.csv"), shared_file("peds-lungs", "manifest.csv")


def _small_manifest(source: Path, folder: Path, per_split: dict[str, int]) -> Path:
    """The first rows of each split of a real manifest, with absolute paths (a few images decode fast)."""
    import csv

    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept, counts = [], {split: 0 for split in per_split}
    for row in rows:
        if counts.get(row["split"], 10**9) < per_split[row["split"]]:
            counts[row["split"]] += 1
            kept.append({**row, "image": str(source.parent / row["image"]), "mask": str(source.parent / row["mask"])})
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "manifest.csv"
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return target


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    cxr, peds = _manifests()
    specs = [SourceSpec("cxr-lungs", _small_manifest(cxr, root / "cxr-lungs", {"train": 3, "val": 1, "test": 1}), 2.0,
                        "masks V7 Labs CC BY 4.0"),
             SourceSpec("peds-lungs", _small_manifest(peds, root / "peds-lungs", {"train": 4, "val": 3, "test": 1}), 0.5,
                        "CC BY 4.0")]
    record, problems = prepare_mixture(specs, root / "mixed.npz", 256)
    return root / "mixed.npz", record, problems


def test_the_mixed_cache_weights_sources_and_balances_their_val_splits(mixed):
    cache, record, problems = mixed
    assert problems == []
    splits = load_example_cache(cache)
    train_ids = [e.id for e in splits["train"]]
    # cxr-lungs twice (3 x 2 = 6), peds-lungs half (2 of 4): every id says where it came from
    assert sum(i.startswith("cxr-lungs/") for i in train_ids) == 6 and sum(i.startswith("peds-lungs/") for i in train_ids) == 2
    # val: 1 cxr image repeated 3 times to match peds's 3, so the checkpoint choice weighs the sources equally
    val_ids = [e.id for e in splits["val"]]
    assert sum(i.startswith("cxr-lungs/") for i in val_ids) == 3 and sum(i.startswith("peds-lungs/") for i in val_ids) == 3
    assert len(splits["test"]) == 2
    # the record counts real images, not copies; licences: the given text plus the manifest's per-image column
    assert [(s["source"], s["images"]) for s in record["training_data"]] == [("cxr-lungs", 3), ("peds-lungs", 4)]
    assert record["training_data"][0]["licence"].startswith("masks V7 Labs CC BY 4.0 (images: ")
    assert record["training_data"][1]["licence"] == "CC BY 4.0"  # peds-lungs has no licence column
    assert training_data_for(cache, splits["train"]) == record["training_data"]
    assert record["mix"]["cxr-lungs"]["val_repeat"] == 3 and record["mix"]["peds-lungs"]["train_examples_per_epoch"] == 2


def test_a_base_cache_remixes_into_the_same_mix_without_its_manifests(tmp_path, mixed):
    """What the GPU machine does: one packed cache (weight 1, val once) becomes the weighted mixes there."""
    from core.training.mixture import remix

    cache, record, _ = mixed
    specs = [SourceSpec(e["source"], Path(m["manifest"]), 1.0, "") for e, m in
             zip(record["training_data"], record["mix"].values())]
    base, _ = prepare_mixture(specs, tmp_path / "base.npz", 256, balance_val=False)
    assert [m["val_repeat"] for m in base["mix"].values()] == [1, 1]
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for path in (tmp_path / "base.npz", sidecar_path(tmp_path / "base.npz")):
        path.rename(moved / path.name)
    again = remix(moved / "base.npz", {"cxr-lungs": 2.0, "peds-lungs": 0.5}, tmp_path / "again.npz")
    assert again["mix"] == {k: {**v, "manifest": again["mix"][k]["manifest"]} for k, v in record["mix"].items()}
    assert [e["licence"] for e in again["training_data"]] == [e["licence"] for e in base["training_data"]]
    ours, theirs = load_example_cache(tmp_path / "again.npz"), load_example_cache(cache)
    for split in ("train", "val", "test"):
        assert [e.id for e in ours[split]] == [e.id for e in theirs[split]]
        assert all((a.image == b.image).all() and (a.mask == b.mask).all() for a, b in zip(ours[split], theirs[split]))
    with pytest.raises(ValueError, match="remix needs a cache written with weight 1"):
        remix(tmp_path / "again.npz", {}, tmp_path / "twice.npz")


def test_weighted_copies_and_source_specs():
    items = list(range(10))
    assert weighted_copies(items, 1.0, 0) == items
    assert len(weighted_copies(items, 2.5, 0)) == 25 and weighted_copies(items, 2.5, 0) == weighted_copies(items, 2.5, 0)
    assert len(set(weighted_copies(items, 0.3, 1))) == 3
    spec = SourceSpec.parse("peds-lungs=../shared/data/peds-lungs/manifest.csv:1.5")
    assert (spec.name, spec.manifest, spec.weight) == ("peds-lungs", Path("../shared/data/peds-lungs/manifest.csv"), 1.5)
    assert SourceSpec.parse("a=/x/m.csv").weight == 1.0
    for bad in ("nameless.csv", "a=", "a/b=m.csv", "a=m.csv:0"):
        with pytest.raises(ValueError, match="NAME=MANIFEST"):
            SourceSpec.parse(bad)


def test_a_manifest_run_records_its_folder_and_licence_column():
    cxr, peds = _manifests()
    assert licence_summary(cxr).startswith("unknown x106; CC BY 3.0 x52; ")  # the 246 train rows, most common first
    assert licence_summary(peds) == ""
    entry = training_data_for(cxr, [])[0]
    assert entry["source"] == "cxr-lungs" and entry["images"] == 0 and "CC BY-NC-SA x38" in entry["licence"]


def test_a_run_on_the_mixed_cache_writes_training_data_into_the_card(mixed, tmp_path, monkeypatch, capsys):
    """One real (tiny) training epoch on the mixed cache; the card, ``models --json`` and the dialog show it."""
    from core.cli import main
    from core.models import sam_vit

    cache, record, _ = mixed
    monkeypatch.setitem(sam_vit.VARIANTS, "sam_vit_b", sam_vit.TINY_TEST_CONFIG)
    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    previous_handler, threads = signal.getsignal(signal.SIGTERM), torch.get_num_threads()
    try:
        assert main(["train", "--data", str(cache), "--out", str(tmp_path / "run"), "--backbone", "sam_vit_b",
                     "--stages", "1", "--epochs", "1", "--batch-size", "4", "--no-augment", "--threads", "1"]) == 0
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        torch.set_num_threads(threads)
    card = read_model_card(tmp_path / "run" / "model-fp32")
    assert card.training_data == (TrainingSource("cxr-lungs", 3, record["training_data"][0]["licence"]),
                                  TrainingSource("peds-lungs", 4, "CC BY 4.0"))
    assert card.training["train_images"] == 8  # the copies an epoch saw (3 x 2 + 4 x 0.5)
    assert card.training_images == 7  # the images it saw: what the Models window and --json show

    assert main(["models", "activate", str(tmp_path / "run" / "model-fp32")]) == 0
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    active = next(r for r in listed if r["active"])
    assert active["training_data"] == record["training_data"] and active["training_images"] == 7


def test_the_models_window_shows_training_data(tmp_path, qtbot, monkeypatch):
    from app.dialogs.models_dialog import COLUMNS, ModelsDialog
    from core.paths import bundled_models_dir

    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    folder = tmp_path / "home" / "models" / "two-sources"
    shutil.copytree(bundled_models_dir() / "default", folder)
    data = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    data["training_data"] = [{"source": "cxr-lungs", "images": 246, "licence": "CC BY 4.0"},
                             {"source": "peds-lungs", "images": 709, "licence": "CC BY 4.0"}]
    (folder / CARD_FILE).write_text(json.dumps(data), encoding="utf-8")
    dialog = ModelsDialog()
    qtbot.addWidget(dialog)
    row = next(i for i, r in enumerate(dialog.records) if r.path.name == "two-sources")
    item = dialog.table.item(row, COLUMNS.index("Training data"))
    assert item.text() == "cxr-lungs 246 + peds-lungs 709"
    assert "peds-lungs: 709 images; licence: CC BY 4.0" in item.toolTip()


@pytest.mark.parametrize("value, message", [
    ({"source": "x"}, "must be a list"),
    ([{"source": "x", "images": -1}], r"training_data\[0\]\): 'images' must be a non-negative whole number"),
    ([{"source": "", "images": 1}], r"training_data\[0\]\): 'source' must be non-empty text"),
    ([{"source": "x", "images": 1, "licence": 3}], "'licence' must be text"),
    (["cxr-lungs"], "list of {source, images, licence} objects"),
])
def test_a_damaged_training_data_record_is_refused_in_one_line(tmp_path, value, message):
    from core.paths import bundled_models_dir

    folder = tmp_path / "m"
    shutil.copytree(bundled_models_dir() / "default", folder)
    data = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    data["training_data"] = value
    (folder / CARD_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelCardError, match=message) as error:
        read_model_card(folder)
    assert "\n" not in str(error.value) and str(folder / CARD_FILE) in str(error.value)
