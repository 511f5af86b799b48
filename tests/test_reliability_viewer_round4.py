"""The viewer must not lose or mislabel work: duplicate UIDs, models changed outside it, odd names,
non-chest images (pytest-qt, the real window, the real model and store, the shared DICOMs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from core.io import load_study
from core.store import AnnotationStore
from tests.shared_data import TWIN_MONO2, shared_file
from tests.test_app_models import home, pretrained_installed, window  # noqa: F401 - fixtures
from tests.test_app_viewer import MASK_TIMEOUT_MS, open_and_wait

REPO = Path(__file__).resolve().parents[1]


# --- two files, one SOP Instance UID -----------------------------------------------------------------


def test_the_monochrome1_copy_of_a_file_is_its_own_image_in_the_store(tmp_path):
    """Fake_MONOHR1.dcm holds its source's pixels and UID with the opposite grey scale: another picture."""
    source = shutil.copy(shared_file("dicom", TWIN_MONO2), tmp_path / "source.dcm")
    fake = shutil.copy(shared_file("dicom", "Fake_MONOHR1.dcm"), tmp_path / "Fake_MONOHR1.dcm")
    with AnnotationStore(tmp_path / "store") as store:
        first = store.register_image(load_study(source))
        fake_study = load_study(fake)
        second = store.register_image(fake_study)
        assert first.key != second.key and len(store.list_images()) == 2
        assert any("same SOPInstanceUID as source.dcm" in w for w in fake_study.warnings), fake_study.warnings
        assert store.get_image(first.key).path == Path(source)  # neither row takes the other's file
        assert store.get_image(second.key).path == Path(fake)


def test_a_monochrome1_record_made_before_inverted_keys_keeps_its_review(tmp_path):
    import sqlite3

    from core.store.image_key import INVERTED_SUFFIX

    fake = shutil.copy(shared_file("dicom", "Fake_MONOHR1.dcm"), tmp_path / "Fake_MONOHR1.dcm")
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(load_study(fake)).key
        store.set_review(key, "rejected", "wrong side", "alice")
    with sqlite3.connect(tmp_path / "store" / "annotations.sqlite") as conn:  # as the earlier key form wrote it
        conn.execute("UPDATE images SET content_key = ? WHERE key = ?", (key.removesuffix(INVERTED_SUFFIX), key))
    with AnnotationStore(tmp_path / "store") as store:
        again = store.register_image(load_study(fake))
        assert again.key == key and again.status == "rejected" and again.reader == "alice"
        assert again.made_on(load_study(fake)) and len(store.list_images()) == 1


def test_a_second_copy_of_one_file_is_named_as_a_duplicate_and_never_takes_the_row(tmp_path):
    first = shutil.copy(shared_file("dicom", TWIN_MONO2), tmp_path / "a.dcm")
    copy = shutil.copy(first, tmp_path / "b.dcm")
    with AnnotationStore(tmp_path / "store") as store:
        record = store.register_image(load_study(first))
        study = load_study(copy)
        again = store.register_image(study)
        assert again.key == record.key and len(store.list_images()) == 1
        assert again.path == Path(first) and again.display_name == "a.dcm"  # the row does not flip to b.dcm
        assert any("same image as a.dcm" in w and "listed once as a.dcm" in w for w in study.warnings)
        assert "duplicate" in [e.kind for e in store.events(record.key)]
        os.remove(first)  # a real move: the record follows the file, and no duplicate is claimed
        moved = load_study(copy)
        assert store.register_image(moved).path == Path(copy)
        assert not any("same image as" in w for w in moved.warnings)


def test_the_shared_twins_get_two_worklist_rows_with_their_own_grey_scale(qtbot, make_window, tmp_path):
    folder = tmp_path / "twins"
    folder.mkdir()
    shutil.copy(shared_file("dicom", TWIN_MONO2), folder / "source.dcm")
    shutil.copy(shared_file("dicom", "Fake_MONOHR1.dcm"), folder / "Fake_MONOHR1.dcm")
    shutil.copy(folder / "source.dcm", folder / "source-copy.dcm")  # and a plain second copy
    win = make_window()
    win.open_paths([folder], activate_first=False)
    qtbot.waitUntil(lambda: not win.studies.pending_batches, timeout=60_000)
    assert win.worklist.count() == 2  # source (+ its copy, said below) and the MONOCHROME1 picture
    problems = [reason for _, reason in win.problems.entries()]
    assert any("same image as" in p and "source" in p for p in problems), problems
    assert any("same SOPInstanceUID as" in p for p in problems), problems
    inverted = {}
    for record in win.store.list_images():
        win.open_key(record.key)
        qtbot.waitUntil(lambda r=record: win.document.key == r.key and win.document.mask is not None,
                        timeout=MASK_TIMEOUT_MS)
        inverted[record.display_name] = win.document.study.inverted
        assert win.windowTitle().startswith(record.display_name)  # the row's name is the picture shown
    assert inverted["Fake_MONOHR1.dcm"] and sorted(inverted.values()) == [False, True]  # one of each, never flipping


# --- a model activated or rolled back outside the viewer ----------------------------------------------


def _cli(*args: str, home_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), ADAQAT_HOME=str(home_dir))
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_models_activate_and_rollback_from_the_command_line_reach_a_running_viewer(
        qtbot, window, pretrained_installed, home):  # noqa: F811 - fixtures
    images = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))
    open_and_wait(qtbot, window, images[0])
    assert window.segmentation.model_info.name == "cxr-lungs-adaqat"
    run = _cli("models", "activate", str(pretrained_installed), home_dir=home)
    assert run.returncode == 0, run.stderr
    qtbot.waitUntil(lambda: "generic-litemedsam" in window.status.model.text(), timeout=60_000)
    open_and_wait(qtbot, window, images[1])  # a mask made afterwards uses the new model
    assert window.store.latest_revision(window.document.key).model_name == "generic-litemedsam"
    run = _cli("models", "rollback", home_dir=home)
    assert run.returncode == 0, run.stderr
    qtbot.waitUntil(lambda: "cxr-lungs-adaqat" in window.status.model.text(), timeout=60_000)
    open_and_wait(qtbot, window, images[2])
    assert window.store.latest_revision(window.document.key).model_name == "cxr-lungs-adaqat"


# --- a study whose name is not UTF-8 -------------------------------------------------------------------


def test_a_study_with_a_non_utf8_name_opens_in_the_viewer(qtbot, make_window, tmp_path):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9-\xff.dcm")
    with open(shared_file("dicom", TWIN_MONO2), "rb") as source, open(raw, "wb") as target:
        target.write(source.read())
    path = Path(os.fsdecode(raw))
    win = make_window()
    win.open_paths([path])
    qtbot.waitUntil(lambda: win.document.mask is not None or win.problems.count() > 0, timeout=MASK_TIMEOUT_MS)
    assert win.problems.count() == 0, win.problems.entries()
    assert os.fsencode(win.document.path) == raw
    assert win.document.study.pixels.shape == (1024, 1024)


# --- a non-chest image -----------------------------------------------------------------------------------


def test_accepting_a_non_chest_image_asks_and_its_mask_stays_out_of_training(qtbot, make_window, monkeypatch,
                                                                            tmp_path):
    from core.training.store_source import reviewed_images

    path = shutil.copy(shared_file("dicom", "RG3_J2KI.dcm"), tmp_path / "RG3_J2KI.dcm")  # body part EXTREMITY
    win = make_window()
    open_and_wait(qtbot, win, Path(path))
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *args, **kw: asked.append(args[2]) or QMessageBox.StandardButton.No)
    win.acts.accept.trigger()  # one click
    key = win.document.key
    assert asked and "not a chest X-ray" in asked[0] and "EXTREMITY" in asked[0]
    assert win.store.get_image(key).status == "unreviewed"  # declined: nothing marked
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kw: QMessageBox.StandardButton.Yes)
    assert win.set_review("accepted")  # the reader insists
    assert win.store.get_image(key).status == "accepted"
    problems: list[str] = []
    assert list(reviewed_images(win.store.root, problems)) == []  # and it still never reaches training
    assert any("is not a chest; not used for training" in p for p in problems)


def test_accepting_a_chest_image_does_not_ask(qtbot, make_window, monkeypatch):
    win = make_window()
    open_and_wait(qtbot, win, sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest.fail("asked about a chest image"))
    win.acts.accept.trigger()
    assert win.store.get_image(win.document.key).status == "accepted"
    assert np.any(win.document.mask)
