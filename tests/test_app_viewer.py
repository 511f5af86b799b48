"""The viewer end to end: real window, real model, real shared DICOM and JPEG files."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QTimer
from PySide6.QtWidgets import QApplication

from tests.shared_data import shared_file

MASK_TIMEOUT_MS = 60_000


def open_and_wait(qtbot, window, path):
    window.open_paths([path])
    qtbot.waitUntil(lambda: window.document.mask is not None and window.document.path is not None
                    and window.document.path.name == path.name, timeout=MASK_TIMEOUT_MS)


def to_view(window, x, y):
    return window.canvas.mapFromScene(QPointF(x, y))


def test_dicom_mask_edit_undo_review_persist_and_seg_export(qtbot, make_window, drag, tmp_path):
    import highdicom as hd

    from core.io import load_study

    path = shared_file("dicom", "RG1_UNCR.dcm")
    window = make_window()
    open_and_wait(qtbot, window, path)
    doc = window.document
    model_mask = doc.mask.copy()
    assert model_mask.shape == (1955, 1841) and 0.15 < (model_mask > 0).mean() < 0.6  # the lungs, not the thorax
    assert window.canvas.overlay.fill.isVisible()
    assert window.overlay_panel.model_label.full_text() == "cxr-lungs-adaqat"  # the bundled default model
    assert window.overlay_panel.precision_label.text() == "INT8 (quantized)"
    assert window.measurements.area.text().endswith("(spacing unknown)")
    assert window.store.latest_revision(doc.key).source == "model"

    # a brush stroke across the image changes the mask and is saved; undo restores it exactly
    window.set_tool("brush")
    window.toolbar_widgets.brush_size.setValue(60)
    stroke = [to_view(window, 100 + 40 * i, 1000) for i in range(12)]
    drag(window.canvas.viewport(), stroke)
    qtbot.waitUntil(lambda: not np.array_equal(doc.mask, model_mask))
    brushed = doc.mask.copy()
    assert brushed[1000, 300] == 255
    assert window.store.latest_revision(doc.key).source == "edit"
    window.undo_action.trigger()
    assert np.array_equal(doc.mask, model_mask)
    np.testing.assert_array_equal(window.store.latest_mask(doc.key), model_mask)
    window.redo_action.trigger()
    assert np.array_equal(doc.mask, brushed)

    # review
    window.review.note.setText("left base ok")
    window.review.accept_button.click()
    assert window.worklist.status(doc.key) == "accepted"
    key = doc.key

    # DICOM SEG export references the source instance
    assert window.acts.export_seg.isEnabled()
    seg_path = window.exports.export_seg(tmp_path / "out_seg.dcm")
    assert seg_path is not None and seg_path.exists()
    seg = hd.seg.segread(seg_path)
    source_uid = load_study(path).identifiers.sop_instance_uid
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    assert referenced == source_uid
    assert [seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers()] == ["Right lung", "Left lung"]
    assert window.exports.export_png(tmp_path / "mask.png").exists()
    csv_text = window.exports.export_csv(tmp_path / "review.csv").read_text(encoding="utf-8-sig")
    assert "accepted" in csv_text
    window.close()

    # a new window on the same store: the worklist shows the status, reopening shows the stored mask
    again = make_window()
    assert again.worklist.status(key) == "accepted"
    again.worklist.select(key)
    qtbot.waitUntil(lambda: again.document.mask is not None, timeout=MASK_TIMEOUT_MS)
    assert again.document.origin.from_store
    assert np.array_equal(again.document.mask, brushed)
    assert "accepted" in again.review.status_label.text()
    assert again.review.note.text() == "left base ok"


def test_truncated_dicom_goes_to_problems_panel_without_dialog(qtbot, make_window, tmp_path):
    source = shared_file("dicom", "RG1_UNCR.dcm").read_bytes()
    bad = tmp_path / "truncated.dcm"
    bad.write_bytes(source[: len(source) // 3])
    window = make_window()
    window.open_paths([bad])
    qtbot.waitUntil(lambda: window.problems.count() == 1, timeout=20_000)
    path, reason = window.problems.entries()[0]
    assert path.endswith("truncated.dcm") and "truncated.dcm" in reason and "\n" not in reason
    assert window.problems_dock.isVisible()
    assert QApplication.activeModalWidget() is None
    assert window.worklist.count() == 0


def test_window_presets_invert_and_right_drag_change_the_pixmap(qtbot, make_window, drag):
    path = shared_file("dicom", "RG1_UNCR.dcm")
    window = make_window()
    window.open_paths([path])
    qtbot.waitUntil(lambda: window.document.study is not None, timeout=20_000)

    def snapshot():
        return window.canvas.current_pixmap().toImage()

    default = snapshot()
    combo = window.toolbar_widgets.presets
    assert combo.itemText(0) == "File default" and combo.count() >= 3
    combo.setCurrentIndex(combo.findText("Auto (1–99 %)"))
    auto = snapshot()
    assert auto != default
    window.acts.invert.trigger()
    assert snapshot() != auto
    window.acts.invert.trigger()
    drag(window.canvas.viewport(), [to_view(window, 900, 900), to_view(window, 1000, 950)], button=_right())
    qtbot.waitUntil(lambda: snapshot() != auto, timeout=2_000)
    assert window.window_level.preset.name == "Custom"
    assert "Custom" in window.status.window_text.text()
    # the image shown never changes the model input
    assert window.document.gray is not None and window.document.gray.dtype == np.uint8
    qtbot.waitUntil(lambda: window.document.mask is not None, timeout=MASK_TIMEOUT_MS)


def _right():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.RightButton


def test_event_loop_stays_responsive_while_segmenting(qtbot, make_window):
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0]
    window = make_window()
    gaps = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    busy_seen = []
    window.segmentation.busy_changed.connect(busy_seen.append)
    timer.start()
    open_and_wait(qtbot, window, image)
    timer.stop()
    assert True in busy_seen  # the mask really was computed during the measurement
    assert window.segmentation.last_run_thread not in (None, threading.main_thread().ident)
    assert max(gaps) < 0.5, f"event loop stalled {max(gaps) * 1000:.0f} ms"
    assert len(gaps) > 20


def wait_for_model(qtbot, window):
    qtbot.waitUntil(lambda: not window.segmentation.busy, timeout=MASK_TIMEOUT_MS)


def test_box_prompts_refine_one_lung_each_and_undo(qtbot, make_window, drag):
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[1]
    window = make_window()
    open_and_wait(qtbot, window, image)
    doc = window.document
    auto = doc.mask.copy()
    h, w = auto.shape
    assert (auto[:, : w // 2] > 0).any() and (auto[:, w // 2:] > 0).any()  # both lungs found
    # a box around the image's left lung: the right lung's mask stays exactly as it was
    window.set_tool("box")
    drag(window.canvas.viewport(), [to_view(window, w * 0.05, h * 0.1), to_view(window, w * 0.48, h * 0.9)])
    qtbot.waitUntil(lambda: not np.array_equal(doc.mask, auto), timeout=MASK_TIMEOUT_MS)
    assert doc.origin.source == "prompt" and window.store.latest_revision(doc.key).source == "prompt"
    boxed = doc.mask.copy()
    right = slice(int(w * 0.5 + 0.04 * h * 0.8) + 2, w)
    assert np.array_equal(boxed[:, right], auto[:, right]) and (boxed[:, right] > 0).any()
    # a second box, around the other lung, leaves the first lung's refined mask alone
    drag(window.canvas.viewport(), [to_view(window, w * 0.52, h * 0.1), to_view(window, w * 0.95, h * 0.9)])
    wait_for_model(qtbot, window)
    assert len(window.prompts.boxes) == 2
    left = slice(0, int(w * 0.52 - 0.04 * h * 0.8) - 2)
    assert np.array_equal(doc.mask[:, left], boxed[:, left])
    # a point inside the first box re-runs that box: the other lung is untouched again
    twice = doc.mask.copy()
    window.set_tool("point_negative")
    drag(window.canvas.viewport(), [to_view(window, w * 0.3, h * 0.5)])
    wait_for_model(qtbot, window)
    assert np.array_equal(doc.mask[:, right], twice[:, right])
    while window.undo_action.isEnabled():
        window.undo_action.trigger()
    assert np.array_equal(doc.mask, auto)
    assert doc.origin.source == "model"  # provenance follows undo back to the model's mask
    assert window.overlay_panel.source_label.text() == "automatic (model)"
    window.acts.clear_prompts.trigger()
    assert window.prompts.empty


@pytest.mark.parametrize("paint", [True, False])
def test_polygon_tools_fill_and_clear(qtbot, make_window, paint):
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[2]
    window = make_window()
    open_and_wait(qtbot, window, image)
    doc = window.document
    before = doc.mask.copy()
    h, w = before.shape
    window.set_tool("polygon_add" if paint else "polygon_erase")
    tool = window.tools["polygon_add" if paint else "polygon_erase"]
    corners = [(w * 0.3, h * 0.3), (w * 0.45, h * 0.3), (w * 0.45, h * 0.6), (w * 0.3, h * 0.6)]
    for x, y in corners:
        tool.press(QPointF(x, y), None)
    tool.finish()
    inside = doc.mask[int(h * 0.4):int(h * 0.5), int(w * 0.35):int(w * 0.4)]
    assert (inside == (255 if paint else 0)).all()
    window.undo_action.trigger()
    assert np.array_equal(doc.mask, before)


def test_a_study_that_finishes_opening_after_close_is_ignored(make_window):
    """The decode worker's 'opened' signal can arrive after the window closed its store (seen in the
    headless screenshot path when the model fails): it must be dropped, not raise in the event loop."""
    window = make_window()
    window._opening_key = "a-key-still-opening"
    window.close()
    window.studies.opened.emit(object())  # delivered after shutdown, as a queued signal would be
