"""Canvas navigation, overlay modes, shortcuts and drop, without the model (fast)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QKeySequence, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.canvas.canvas import ImageCanvas
from app.canvas.qimage import gray_to_qimage


def make_canvas(qtbot, width=400, height=300):
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(600, 500)
    canvas.show()
    ramp = np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))
    canvas.set_image(gray_to_qimage(ramp))
    return canvas


def wheel(canvas, pos: QPoint, delta: int) -> None:
    event = QWheelEvent(QPointF(pos), QPointF(canvas.viewport().mapToGlobal(pos)), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)


def test_wheel_zooms_about_the_cursor_fit_and_actual_size(qtbot):
    canvas = make_canvas(qtbot)
    fit_scale = canvas.scale_factor()
    assert 1.2 < fit_scale < 1.6  # 400x300 fitted into ~600x500
    pos = QPoint(200, 150)
    before = canvas.mapToScene(pos)
    wheel(canvas, pos, 240)
    assert canvas.scale_factor() > fit_scale * 1.3
    after = canvas.mapToScene(pos)
    assert abs(after.x() - before.x()) < 2 and abs(after.y() - before.y()) < 2
    canvas.actual_size()
    assert abs(canvas.scale_factor() - 1.0) < 1e-6
    canvas.fit()
    assert abs(canvas.scale_factor() - fit_scale) < 1e-6


def test_cursor_reports_image_pixel_and_middle_drag_pans(qtbot, drag):
    canvas = make_canvas(qtbot)
    seen = []
    canvas.cursor_moved.connect(lambda x, y: seen.append((x, y)))
    target = canvas.mapFromScene(QPointF(100.5, 50.5))
    qtbot.mouseMove(canvas.viewport(), target)
    assert seen and seen[-1] == (100, 50)
    canvas.zoom_by(4)
    value = canvas.horizontalScrollBar().value()
    drag(canvas.viewport(), [QPoint(300, 250), QPoint(200, 250)], button=Qt.MouseButton.MiddleButton)
    assert canvas.horizontalScrollBar().value() == value + 100


def test_overlay_modes(qtbot):
    canvas = make_canvas(qtbot)
    mask = np.zeros((300, 400), np.uint8)
    mask[50:150, 60:200] = 255
    overlay = canvas.overlay
    overlay.set_mask(mask)
    assert overlay.fill.isVisible() and overlay.outline.isVisible()
    assert overlay.outline.path().boundingRect().width() > 130
    overlay.set_mode("contour")
    assert not overlay.fill.isVisible() and overlay.outline.isVisible()
    overlay.set_visible(False)
    assert not overlay.outline.isVisible()
    overlay.set_visible(True)
    overlay.set_mode("fill")
    overlay.set_opacity(0.7)
    assert abs(overlay.fill.opacity() - 0.7) < 1e-6


def test_single_key_shortcuts_and_drop(qtbot, make_window, tmp_path):
    window = make_window()
    acts = window.acts
    assert acts.tools["point_positive"].shortcuts()[0] == QKeySequence("+")
    assert QKeySequence("Ctrl+Y") in window.redo_action.shortcuts()
    assert window.undo_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Undo)
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_B)
    assert acts.tools["brush"].isChecked() and window.canvas.tool is window.tools["brush"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_X)
    assert window.canvas.tool is window.tools["box"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert window.canvas.hand_mode
    # the note field keeps its letters
    window.review.set_enabled(True)
    window.review.note.setFocus()
    qtbot.keyClicks(window.review.note, "be")
    assert window.review.note.text() == "be" and window.canvas.hand_mode

    bad = tmp_path / "dropped.dcm"
    bad.write_bytes(b"not a dicom at all")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(bad))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.problems.count() == 1, timeout=20_000)
