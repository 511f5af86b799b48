"""Two readers on one store: a change built on an older state is a conflict, never a silent overwrite.

Store level: two real processes on one real store (SQLite WAL + mask files). Viewer level: two real
windows (each with its own store connection, as two viewers on a shared folder), the real model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.io import load_study
from core.store import AnnotationStore, StoreConflict
from tests.shared_data import shared_file

REPO = Path(__file__).resolve().parents[1]

READER = r"""
import json, sys
import numpy as np
from core.store import AnnotationStore, StoreConflict
store_dir, key, action, base, reader = sys.argv[1:6]
base = None if base == "none" else int(base)
store = AnnotationStore(store_dir)
h, w = store.get_image(key).height, store.get_image(key).width
mask = np.zeros((h, w), np.uint8)
if action == "edit_left":
    mask[:, : w // 3] = 255
elif action == "edit_right":
    mask[:, 2 * w // 3:] = 255
try:
    if action.startswith("edit"):
        store.save_mask(key, mask, source="edit", reader=reader, base_version=base)
    else:
        store.set_review(key, action, "", reader, base_version=base)
    print(json.dumps({"ok": True, "version": store.own_version(key)}))
except StoreConflict as error:
    print(json.dumps({"ok": False, "conflict": str(error)}))
store.close()
"""


def _reader(store: Path, key: str, action: str, base, name: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-c", READER, str(store), key, action, "none" if base is None else str(base),
                          name], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def shared_store(tmp_path):
    image = tmp_path / "chest.png"
    cv2.imwrite(str(image), cv2.imread(str(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0]), 0))
    store = AnnotationStore(tmp_path / "store")
    key = store.register_image(load_study(image)).key
    model_mask = np.zeros((store.get_image(key).height, store.get_image(key).width), np.uint8)
    model_mask[10:-10, 10:-10] = 255
    store.save_mask(key, model_mask, source="edit", reader="setup")
    version = store.image_version(key)
    store.close()
    return tmp_path / "store", key, version


def test_two_processes_a_stale_edit_is_refused_and_nothing_is_lost(shared_store):
    store_dir, key, opened = shared_store  # both readers opened the image at this version
    first = _reader(store_dir, key, "edit_left", opened, "reader1")
    assert first["ok"]
    accepted = _reader(store_dir, key, "accepted", first["version"], "reader1")
    assert accepted["ok"]
    second = _reader(store_dir, key, "edit_right", opened, "reader2")  # reader 2 still shows the old mask
    assert not second["ok"] and "changed by reader1 (review: accepted)" in second["conflict"]
    with AnnotationStore(store_dir) as store:
        latest = store.load_revision_mask(store.latest_revision(key))
        assert latest[:, 0].all() and not latest[:, -1].any()  # reader 1's region is the current mask
        assert store.get_image(key).status == "accepted"
        assert [r.reader for r in store.history(key)][:2] == ["reader1", "setup"] or \
               [r.reader for r in store.history(key)][-2:] == ["setup", "reader1"]
    # "keep both": reader 2 saves on top, knowingly; reader 1's revision stays in the history
    both = _reader(store_dir, key, "edit_right", None, "reader2")
    assert both["ok"]
    with AnnotationStore(store_dir) as store:
        readers = sorted(r.reader for r in store.history(key))
        assert readers == ["reader1", "reader2", "setup"]


def test_two_processes_a_verdict_on_an_unseen_mask_is_refused(shared_store):
    store_dir, key, opened = shared_store
    corrected = _reader(store_dir, key, "edit_left", opened, "reader1")
    _reader(store_dir, key, "accepted", corrected["version"], "reader1")
    stale = _reader(store_dir, key, "rejected", opened, "reader2")  # reader 2 never saw reader 1's mask
    assert not stale["ok"] and "reader1" in stale["conflict"]
    with AnnotationStore(store_dir) as store:
        assert store.get_image(key).status == "accepted"  # the image stays in the training data


def test_versions_follow_own_writes_without_false_conflicts(shared_store):
    store_dir, key, opened = shared_store
    with AnnotationStore(store_dir) as store:
        mask = store.latest_mask(key)
        store.save_mask(key, 255 - mask, source="edit", reader="r", base_version=opened)
        store.set_review(key, "corrected", "", "r", base_version=store.own_version(key))
        store.save_mask(key, mask, source="edit", reader="r", base_version=opened)  # own later writes: no conflict
        assert store.image_version(key) == store.own_version(key)
    with AnnotationStore(store_dir) as other, pytest.raises(StoreConflict):
        other.set_review(key, "rejected", "", "x", base_version=opened)


def test_two_viewers_conflict_is_shown_and_resolved(qtbot, make_window):
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[1]
    from tests.test_app_viewer import open_and_wait

    one, two = make_window(), make_window()
    one.document.reader, two.document.reader = "reader1", "reader2"
    open_and_wait(qtbot, one, image)
    open_and_wait(qtbot, two, image)
    key = one.document.key
    h, w = one.document.mask.shape
    asked = []
    two.ask_conflict = lambda parent, message, can_keep_both: asked.append((message, can_keep_both)) or "reload"

    mine = one.document.mask.copy()
    mine[h // 2 - 20: h // 2 + 20, w // 2 - 20: w // 2 + 20] = 255 - mine[h // 2 - 20: h // 2 + 20, w // 2 - 20: w // 2 + 20]
    assert one.document.edit(mine, "Brush")
    assert one.set_review("accepted")
    # reader 2 still shows the mask as it was when opened and adds a region of their own
    theirs = two.document.mask.copy()
    theirs[:20, :20] = 255 - theirs[:20, :20]
    two.document.edit(theirs, "Brush")
    assert asked and "reader1" in asked[0][0] and asked[0][1] is True
    assert np.array_equal(two.document.mask, mine)  # reloaded: reader 1's work is what reader 2 sees now
    assert np.array_equal(two.store.latest_mask(key), mine) and two.store.get_image(key).status == "accepted"
    assert two.worklist.status(key) == "accepted"

    # a verdict on a mask reader 2 never saw: refused, the image keeps reader 1's status
    open_and_wait(qtbot, two, image)
    one.document.edit(255 - mine, "Brush")  # reader 1 corrects again meanwhile
    asked.clear()
    assert not two.set_review("rejected")
    assert asked and asked[0][1] is False and two.store.get_image(key).status != "rejected"

    # keep both: reader 2's change goes on top, reader 1's stays in the history
    two.ask_conflict = lambda parent, message, can_keep_both: "keep"
    edited = two.document.mask.copy()
    edited[-20:, -20:] = 255 - edited[-20:, -20:]
    two.document.edit(edited, "Brush")
    assert np.array_equal(two.store.latest_mask(key), edited)
    assert {"reader1", "reader2"} <= {r.reader for r in two.store.history(key)}
    assert two.store.get_image(key).status == "corrected"


# --- full disk (issue 29, item 3), on a real small tmpfs ----------------------------------------------


def _fill(disk: Path) -> Path:
    """Fill the file system to the last byte; returns the filler file (delete it to free space)."""
    filler = disk / "filler.bin"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * chunk)
            except OSError:
                pass
    finally:
        os.close(descriptor)
    return filler


def test_opening_a_healthy_store_on_a_full_disk_says_the_disk_is_full(tmp_path):
    from core.store import StoreError
    from tests.full_disk import small_tmpfs

    image = tmp_path / "chest.png"
    cv2.imwrite(str(image), np.full((64, 64), 128, np.uint8))
    with small_tmpfs("4m") as disk:
        with AnnotationStore(disk / "store") as store:
            key = store.register_image(load_study(image)).key
            store.save_mask(key, np.full((64, 64), 255, np.uint8), source="edit", reader="r")
        for leftover in (disk / "store").glob("annotations.sqlite-*"):
            leftover.unlink()  # a clean close: WAL checkpointed; the next open must create them again
        filler = _fill(disk)
        with pytest.raises(StoreError) as info:
            AnnotationStore(disk / "store")
        message = str(info.value)
        assert "disk is full" in message and "backup" not in message and "\n" not in message, message
        filler.unlink()
        with AnnotationStore(disk / "store") as store:  # space freed: the same store opens, nothing lost
            assert store.integrity_check() == "ok" and store.latest_mask(key).all()


def test_ctrl_s_after_a_full_disk_saves_the_edit_as_corrected(qtbot, make_window, tmp_path):
    """The edit of an accepted image fails on a full disk; once space is freed, Ctrl+S saves it and the
    image is "corrected" (it used to stay "accepted" while the status bar said all was saved)."""
    from tests.full_disk import small_tmpfs
    from tests.test_app_viewer import open_and_wait

    image = tmp_path / "chest.png"
    cv2.imwrite(str(image), cv2.imread(str(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[2]), 0))
    with small_tmpfs("8m") as disk:
        window = make_window(disk / "store")
        open_and_wait(qtbot, window, image)
        key = window.document.key
        assert window.set_review("accepted")
        filler = _fill(disk)
        edited = window.document.mask.copy()
        edited[:40, :40] = 255 - edited[:40, :40]
        window.document.edit(edited, "Brush")
        assert window.document.dirty and window.store.get_image(key).status == "accepted"
        assert "No space left on device" in window.statusBar().currentMessage() or window.document.dirty
        filler.unlink()
        window.save_now()
        assert not window.document.dirty
        assert np.array_equal(window.store.latest_mask(key), edited)
        assert window.store.get_image(key).status == "corrected"
        assert window.worklist.status(key) == "corrected"
        window.close()
        window.store.close()
