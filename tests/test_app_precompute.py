"""Masks ready in advance, on the real window: background pass, review order, flags, the reader first."""

from __future__ import annotations

import shutil
import threading

import cv2
import numpy as np
import pytest

from app.panels.worklist_filter import KEY_ROLE
from tests.shared_data import shared_file

PASS_TIMEOUT_MS = 600_000  # a limit, not a pace: waits end on their condition (a mask can take minutes under load)
CLINIC = ("bf08030cc1", "2a4df1b084", "35c87744f0")


def _folder(tmp_path, with_missing_lung: bool = True, stems=CLINIC):
    """Three clinic images (plus one with the patient's left half blanked: a mask with one lung)."""
    folder = tmp_path / "folder"
    folder.mkdir()
    images = shared_file("clinic-sample", "images")
    names = []
    for i, stem in enumerate(stems):
        target = folder / f"{i + 1:02d}_{stem}.jpg"
        shutil.copy(images / f"{stem}.jpg", target)
        names.append(target.name)
    if with_missing_lung:
        gray = cv2.imread(str(images / f"{CLINIC[0]}.jpg"), cv2.IMREAD_GRAYSCALE)
        gray[:, gray.shape[1] // 2 :] = 0
        cv2.imwrite(str(folder / "04_half.png"), gray)
        names.append("04_half.png")
    return folder, names


def _import(qtbot, window, folder, count, activate=False):
    done = []
    window.studies.import_finished.connect(done.append)
    window.open_paths([folder], activate_first=activate)
    qtbot.waitUntil(lambda: bool(done) and window.worklist.count() == count, timeout=60_000)
    return window.worklist.keys()


def _wait_pass(qtbot, window, keys):
    qtbot.waitUntil(lambda: not window.precompute.busy and all(
        window.store.latest_revision(k) is not None for k in keys), timeout=PASS_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not window.precompute.busy, timeout=PASS_TIMEOUT_MS)


def _key_of(window, name):
    return next(r.key for r in window.store.list_images() if r.path.name == name)


def test_background_pass_sorts_by_confidence_and_shows_flags_with_reasons(qtbot, make_window, tmp_path):
    folder, names = _folder(tmp_path)
    window = make_window()
    keys = _import(qtbot, window, folder, len(names))
    _wait_pass(qtbot, window, keys)
    background = window.precompute._worker.last_run_thread
    assert background is not None and background != threading.get_ident()  # never on the GUI thread
    for key in keys:
        revision = window.store.latest_revision(key)
        assert revision.source == "model"
        assert revision.model_weights_sha256 == window.segmentation.model_info.weights_sha256
        assert window.worklist.confidence(key) is not None

    half = _key_of(window, "04_half.png")
    cell = window.worklist._cell(window.worklist._items[half], 2)
    assert "one lung missing" in cell.text() and "⚠" in cell.text()
    assert "check that both lungs are outlined" in cell.toolTip()
    assert not cell.icon().isNull()

    # least confident first: the one-lung image leads, and the view shows that order
    window.worklist.least_confident_first.setChecked(True)
    confidences = [window.worklist.confidence(k) for k in window.worklist.review_order()]
    assert confidences == sorted(confidences)
    assert window.worklist.review_order()[0] == half
    proxy = window.worklist.proxy
    shown = [proxy.mapToSource(proxy.index(r, 0)).data(KEY_ROLE) for r in range(proxy.rowCount())]
    assert shown == window.worklist.review_order()

    # Next unreviewed follows that order; opening shows the stored mask and the flags in the review panel
    window.worklist.select(half)
    qtbot.waitUntil(lambda: window.document.key == half and window.document.mask is not None, timeout=60_000)
    text = window.review.quality_label.text()
    assert "one lung missing" in text and "Confidence" in text
    window.acts.next_unreviewed.trigger()
    second = window.worklist.review_order()[1]
    qtbot.waitUntil(lambda: window.document.key == second, timeout=60_000)

    # the filter finds flagged images by the flag's words
    window.worklist.filter.setText("one lung missing")
    assert window.worklist.proxy.rowCount() == 1
    window.worklist.filter.setText("")
    window.worklist.least_confident_first.setChecked(False)
    assert window.worklist.review_order() == window.worklist.keys()


def test_opened_image_jumps_the_queue_and_an_edit_during_the_pass_is_kept(qtbot, make_window, tmp_path):
    folder, names = _folder(tmp_path)
    window = make_window()
    keys = _import(qtbot, window, folder, len(names))
    last = keys[-1]
    window.worklist.select(last)  # the reader opens the last image while the pass is at the first
    qtbot.waitUntil(lambda: window.document.key == last and window.document.mask is not None, timeout=120_000)
    assert last not in window.precompute.pending()
    assert window.precompute.busy  # the background pass is still going: the reader's image came first
    before = window.document.mask.copy()
    edited = before.copy()
    edited[: edited.shape[0] // 3] = 255  # a big brush stroke across the top
    assert window.document.edit(edited, "Brush", source="edit")
    _wait_pass(qtbot, window, keys)
    revision = window.store.latest_revision(last)
    assert revision.source == "edit" and np.array_equal(window.store.latest_mask(last), edited)
    assert window.worklist.confidence(last) is None  # the reader's mask has no model confidence
    assert last not in window.precompute.order  # never computed in the background
    ids = {k: window.store.history(k)[0].id for k in keys}
    queued_later = [k for k in keys if k not in window.precompute.order[:1] and k != last]
    assert all(ids[last] < ids[k] for k in queued_later)  # saved before the images queued ahead of it


@pytest.fixture(scope="module")
def other_model():
    from core.models.loading import load_model

    return load_model("lite_medsam", "cpu")


def test_second_launch_reuses_masks_and_a_new_model_redoes_the_unreviewed(qtbot, tmp_path, loaded_model,
                                                                           other_model, viewer_settings):
    from app.main_window import MainWindow
    from app.services.settings import Settings

    folder, names = _folder(tmp_path, with_missing_lung=False, stems=CLINIC[:2])
    store = tmp_path / "store"

    def launch(model):
        window = MainWindow(store_path=store, loaded_model=model, settings=Settings())
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.segmentation.model_info is not None, timeout=60_000)
        return window

    first = launch(loaded_model)
    keys = _import(qtbot, first, folder, len(names))
    _wait_pass(qtbot, first, keys)
    reviewed = keys[0]
    first.store.set_review(reviewed, "accepted", "", "dr test")
    revisions = {k: first.store.latest_revision(k).id for k in keys}
    first.close()

    again = launch(loaded_model)  # same model: everything is reused
    qtbot.waitUntil(lambda: again.precompute.settled and again.worklist.count() == len(keys), timeout=PASS_TIMEOUT_MS)
    assert {k: again.store.latest_revision(k).id for k in keys} == revisions
    assert all(again.worklist.confidence(k) is not None for k in keys)
    assert again.precompute.order == []
    again.close()

    changed = launch(other_model)  # another active model: the unreviewed masks are redone, the accepted one kept
    qtbot.waitUntil(lambda: changed.precompute.settled and len(changed.precompute.order) >= len(keys) - 1,
                    timeout=PASS_TIMEOUT_MS)
    new_sha = other_model.info.weights_sha256
    for key in keys:
        latest = changed.store.latest_revision(key)
        if key == reviewed:
            assert latest.id == revisions[key]
        else:
            assert latest.id != revisions[key] and latest.model_weights_sha256 == new_sha
    changed.close()


def test_closing_the_window_during_the_pass_stops_and_joins_the_background_thread(qtbot, make_window, tmp_path):
    folder, names = _folder(tmp_path, with_missing_lung=False)
    window = make_window()
    keys = _import(qtbot, window, folder, len(names))
    qtbot.waitUntil(lambda: window.precompute.in_flight is not None, timeout=PASS_TIMEOUT_MS)
    in_flight = window.precompute.in_flight
    started = list(window.precompute.order)
    window.close()  # the image in progress is abandoned at its next step; close returns once the thread has ended
    assert window.precompute.stopped
    assert window.store.closed
    worker = window.precompute._worker
    assert worker.stop.is_set() and worker.last_outcome in ("stopped", "saved", "kept")
    assert window.precompute.pending() == []
    qtbot.wait(50)  # queued answers of the stopped thread, if any, are delivered now: nothing new starts
    assert window.precompute.order in (started, started + [in_flight])
    from core.store import AnnotationStore

    with AnnotationStore(tmp_path / "store") as store:  # the store is whole; an abandoned image has no mask
        for key in keys:
            revision = store.latest_revision(key)
            assert revision is None or revision.source == "model"
        if worker.last_outcome == "stopped":
            assert store.latest_revision(in_flight) is None
