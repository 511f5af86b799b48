"""Issue 29's smaller findings: the train progress line, odd paths, odd training data, the viewer.

Real CLI (in process, stderr read at the file-descriptor level), real files built here.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.cli import main
from core.cli.common import fail
from core.cli.train_command import ProgressBar
from core.training.progress import ProgressEvent
from tests.full_disk import small_tmpfs
from tests.shared_data import shared_file


def test_an_error_during_training_gets_its_own_line_not_the_progress_bar(capfd):
    bar = ProgressBar()
    bar(ProgressEvent(stage="stage1", epoch=1, epochs=3, step=2, steps=10, loss=0.5))
    assert fail("/out/model-fp32/model.safetensors: could not write (No space left on device)") == 2
    err = capfd.readouterr().err
    assert "\nerror: /out/model-fp32" in err
    assert err.splitlines()[-1].startswith("error: ")


# --- 5. paths --------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _small_manifest(folder: Path, masks=lambda m: m, extra_rows=()) -> Path:
    """5 real cxr-lungs pairs (3 train, 1 val, 1 test) copied under ``folder``; ``masks`` rewrites each mask."""
    source = shared_file("cxr-lungs")
    rows = list(csv.DictReader((source / "manifest.csv").open(encoding="utf-8")))
    chosen = [r for r in rows if r["split"] == "train"][:3] + [r for r in rows if r["split"] == "val"][:1] + \
             [r for r in rows if r["split"] == "test"][:1]
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "mask", "split"])
        for row in chosen:
            shutil.copy(source / row["image"], folder / row["image"])
            mask = cv2.imread(str(source / row["mask"]), cv2.IMREAD_GRAYSCALE)
            (folder / row["mask"]).write_bytes(cv2.imencode(".png", masks(mask))[1].tobytes())  # imwrite: no non-UTF-8
            writer.writerow([row["id"], row["image"], row["mask"], row["split"]])
        for row in extra_rows:
            writer.writerow(row)
    return manifest


def test_a_manifest_in_a_non_utf8_folder_is_prepared_and_evaluated_without_a_crash(tmp_path):
    folder = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/clinic-\xff\xfe"))
    manifest = _small_manifest(folder)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-m", "core.cli", "prepare", "--data", os.fsencode(str(manifest)),
                          "--out", str(tmp_path / "cache.npz")], cwd=REPO, env=env, capture_output=True, timeout=600)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])  # was 139, a segmentation fault in OpenCV
    assert (tmp_path / "cache.npz").is_file() and b"Traceback" not in run.stderr
    probe = ("import sys; from core.io.manifest import read_manifest; from core.evaluation.runner import "
             "manifest_images; p=[]; print(len(list(manifest_images(read_manifest(sys.argv[1]).split('test'), p))), p)")
    run = subprocess.run([sys.executable, "-c", probe, os.fsencode(str(manifest))], cwd=REPO, env=env,
                         capture_output=True, timeout=600)
    assert run.returncode == 0 and run.stdout.startswith(b"1 []"), (run.returncode, run.stdout, run.stderr[-1000:])


def test_names_over_255_bytes_in_segment_input_or_out_give_one_line_and_the_batch_goes_on(tmp_path, capfd):
    good = tmp_path / "chest.png"
    shutil.copy(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0], tmp_path / "chest.jpg")
    cv2.imwrite(str(good), cv2.imread(str(tmp_path / "chest.jpg"), cv2.IMREAD_GRAYSCALE))
    long_input = tmp_path / ("a" * 300 + ".png")
    assert main(["segment", str(long_input), str(good), "--out", str(tmp_path / "out")]) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err and "the name is too long" in err
    assert (tmp_path / "out" / "chest.png").is_file()  # the batch went on
    assert main(["segment", str(good), "--out", str(tmp_path / ("b" * 300))]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and "--out cannot be used: the name is too long" in err and err.count("\n") == 1


def test_prepare_out_on_a_read_only_file_system_gives_one_line(tmp_path, capfd):
    manifest = _small_manifest(tmp_path / "data")
    with small_tmpfs("1m", read_only=True) as disk:
        assert main(["prepare", "--data", str(manifest), "--out", str(disk / "sub" / "cache.npz")]) == 2
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(lines) == 1 and "Read-only file system" in lines[0], err


def test_a_file_named_like_an_option_gets_a_hint_and_double_dash_works(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("--json.png", np.full((64, 64), 128, np.uint8))
    with pytest.raises(SystemExit):
        main(["segment", "--out", "masks", "--json.png"])
    assert "put '--' before it" in capfd.readouterr().err
    assert main(["segment", "--out", "masks", "--", "--json.png"]) == 0
    assert any((tmp_path / "masks").iterdir())


def test_a_model_card_with_a_text_image_size_is_refused_in_one_line(tmp_path, capfd):
    from core.models.loading import bundled_model_dirs

    folder = tmp_path / "model"
    shutil.copytree(bundled_model_dirs()["default"], folder)
    card = __import__("json").loads((folder / "model.json").read_text())
    card.setdefault("backbone_config", {})["image_size"] = "abc"
    (folder / "model.json").write_text(__import__("json").dumps(card))
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.full((64, 64), 128, np.uint8))
    assert main(["segment", str(image), "--out", str(tmp_path / "o"), "--model", str(folder)]) == 2
    err = capfd.readouterr().err
    assert "image_size must be a whole number" in err and "Traceback" not in err


# --- 6. training data --------------------------------------------------------------------------------


def test_masks_stored_as_0_1_are_read_as_lung_with_a_note(tmp_path):
    from core.training.example_loading import load_examples
    from core.io.manifest import read_manifest

    manifest = _small_manifest(tmp_path / "d", masks=lambda m: (m >= 192).astype(np.uint8))  # 0/1 masks
    examples, problems = load_examples(read_manifest(manifest).split("train"), 256)
    assert len(examples) == 3  # were all "no lung pixels", rows skipped
    assert problems == ["3 mask(s) stored as 0/1; 1 was read as lung (the product's masks use 255 for lung)"]
    assert all((e.mask == 255).any() for e in examples)


def test_a_faint_mask_says_lungs_must_be_255(tmp_path):
    from core.training.example_loading import load_examples
    from core.io.manifest import read_manifest

    manifest = _small_manifest(tmp_path / "d", masks=lambda m: ((m >= 192) * 100).astype(np.uint8))
    examples, problems = load_examples(read_manifest(manifest).split("train"), 256)
    assert not examples and all("largest value is 100; lung pixels must be 255" in p for p in problems)


def test_a_non_chest_dicom_in_a_training_manifest_is_skipped_with_a_message(tmp_path):
    from core.io import load_study
    from core.training.example_loading import load_examples
    from core.io.manifest import read_manifest

    tibia = shared_file("dicom", "RG3_J2KI.dcm")
    shutil.copy(tibia, tmp_path / "tibia.dcm")
    study = load_study(tibia)
    mask = np.zeros((study.height, study.width), np.uint8)
    mask[study.height // 4: study.height // 2, study.width // 4: study.width // 2] = 255
    (tmp_path / "d").mkdir()
    cv2.imwrite(str(tmp_path / "d" / "tibia-mask.png"), mask)
    manifest = _small_manifest(tmp_path / "d2", extra_rows=[["tibia", str(tmp_path / "tibia.dcm"),
                                                             str(tmp_path / "d" / "tibia-mask.png"), "train"]])
    examples, problems = load_examples(read_manifest(manifest).split("train"), 256)
    assert len(examples) == 3
    assert len(problems) == 1 and "tibia" in problems[0] and "is not a chest" in problems[0]


def test_an_accepted_non_chest_image_in_the_store_is_not_trained_on(tmp_path):
    from core.io import load_study
    from core.store import AnnotationStore
    from core.training.store_source import reviewed_images

    study = load_study(shared_file("dicom", "RG3_J2KI.dcm"))
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(study).key
        mask = np.zeros((study.height, study.width), np.uint8)
        mask[100:400, 100:400] = 255
        store.save_mask(key, mask, source="edit", reader="r")
        store.set_review(key, "accepted", "", "r")  # one Accept, as issue 29 found
    problems: list[str] = []
    assert list(reviewed_images(tmp_path / "store", problems)) == []
    assert len(problems) == 1 and "is not a chest; not used for training" in problems[0]


# --- 7. viewer ------------------------------------------------------------------------------------------


def test_rerun_over_a_correction_asks_first_and_leaves_the_image_unreviewed(qtbot, make_window):
    from tests.test_app_viewer import MASK_TIMEOUT_MS, open_and_wait

    window = make_window()
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[4]
    open_and_wait(qtbot, window, image)
    doc, store = window.document, window.store
    edited = doc.mask.copy()
    edited[:60, :60] = 255 - edited[:60, :60]
    assert doc.edit(edited, "Brush")
    assert store.get_image(doc.key).status == "corrected"
    asked = []
    window.masks.confirm = lambda text: asked.append(text) or False
    assert not window.masks.rerun_automatic()  # declined: the correction stays
    assert asked and np.array_equal(doc.mask, edited) and store.get_image(doc.key).status == "corrected"
    window.masks.confirm = lambda text: True
    with qtbot.waitSignal(window.masks.automatic_rerun_applied, timeout=MASK_TIMEOUT_MS):
        assert window.masks.rerun_automatic()
    assert not np.array_equal(doc.mask, edited)
    assert store.get_image(doc.key).status == "unreviewed"  # was "corrected": the model's mask as a correction
    assert window.worklist.status(doc.key) == "unreviewed"
    assert len(store.history(doc.key)) >= 3  # the correction is kept in the history
