"""The reading-room workflow on the real window (pytest-qt, real model, real files).

Cold start paints the window before the model loads and shows the image without waiting for it;
chest window presets are remembered and a custom window stays named; Accept/Corrected/Reject move
on; editing an unreviewed mask makes it corrected; a "+" that changes nothing says so; the filter
matches patient-free fields only, keeps DICOM groups expanded and never changes the open image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPoint, Qt

from tests.shared_data import shared_file, write_dicom
from tests.test_app_viewer import open_and_wait, to_view, wait_for_model

ROOT = Path(__file__).resolve().parents[1]
# A mask takes about a second on a quiet 2-core PC; on a CI machine shared with training runs it took over
# 60 s (model load alone 65 s at load average 25). A hang still fails, only later.
MASK_TIMEOUT_MS = 180_000


class PaintSpy(QObject):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def eventFilter(self, watched, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Paint and "paint" not in self.events:
            self.events.append("paint")
        return False


def test_cold_start_paints_the_window_first_and_loads_the_model_in_its_thread(qtbot, viewer_settings, tmp_path):
    from app.main_window import MainWindow

    events: list[str] = []
    window = MainWindow(store_path=tmp_path / "store", settings=viewer_settings)  # loads the model itself
    qtbot.addWidget(window)
    spy = PaintSpy(events)
    window.installEventFilter(spy)
    requested = []
    original = window.segmentation.load_model
    window.segmentation.load_model = lambda *a: (requested.append("paint" in events), original(*a))
    window.segmentation.model_ready.connect(lambda _info: events.append("model"))
    window.image_shown.connect(lambda _key: events.append("image"))
    window.mask_shown.connect(lambda _key: events.append("mask"))
    window.segmentation.error.connect(lambda _key, message: events.append(f"mask failed: {message}"))
    window.segmentation.model_failed.connect(lambda message: events.append(f"model failed: {message}"))
    window.resize(1200, 800)
    window.show()
    window.open_paths([shared_file("dicom", "RG1_UNCR.dcm")])
    qtbot.waitUntil(lambda: "mask" in events or any("failed" in e for e in events), timeout=MASK_TIMEOUT_MS)
    assert events[-1] == "mask", events
    assert requested == [True], "the model was requested before the window had painted"
    assert events.index("paint") < events.index("model") and events.index("image") < events.index("mask")
    assert window.segmentation.last_run_thread is not None
    window.close()


def test_the_window_module_leaves_the_training_dialogs_for_later():
    """Opening the viewer must not import Fine-tune / Models (the training stack): they load on first use."""
    code = ("import sys; import app.main_window; "
            "print(sorted(m for m in ('app.dialogs.training_dialog', 'app.dialogs.models_dialog', "
            "'core.training.pipeline', 'core.evaluation.runner') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "[]"


def test_chest_presets_are_remembered_and_a_custom_window_stays_named(qtbot, make_window, drag, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, shared_file("dicom", "RG1_UNCR.dcm"))
    combo = window.toolbar_widgets.presets
    names = [combo.itemText(i) for i in range(combo.count())]
    assert names[:2] == ["File default", "File window 1"]
    assert {"Lung", "Mediastinum", "Bone", "Soft tissue"} <= set(names)
    default = window.canvas.current_pixmap().toImage()
    combo.setCurrentIndex(combo.findText("Lung"))
    assert window.window_level.preset.name == "Lung" and window.canvas.current_pixmap().toImage() != default
    assert window.status.window_text.text().startswith("Lung: C ")
    window.grab().save(str(tmp_path / "lung_preset.png"))  # looked at by a person: lungs readable, not washed out
    assert window.settings.window_preset() == "Lung"

    # the next image opens in the lung window too (an 8-bit MONOCHROME2 chest: its own numbers)
    other = shared_file("dicom", "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm")
    open_and_wait(qtbot, window, other)
    assert combo.currentText() == "Lung" and window.window_level.preset.name == "Lung"
    assert window.window_level.preset.width < 256  # 8-bit values, not the 15-bit film's

    # a right-drag makes a custom window: the box names it instead of going blank
    start = window.canvas.viewport().rect().center()
    drag(window.canvas.viewport(), [start, start + QPoint(60, -40)], button=Qt.MouseButton.RightButton)
    qtbot.waitUntil(lambda: window.window_level.preset.name == "Custom", timeout=2_000)
    assert combo.currentText().startswith("Custom C ") and "/W " in combo.currentText()
    assert window.settings.window_preset() == "Lung"  # dragging is not a choice of preset
    combo.setCurrentIndex(combo.findText("Bone"))
    assert window.window_level.preset.name == "Bone" and combo.findText("Custom", Qt.MatchFlag.MatchStartsWith) == -1
    window.close()

    again = make_window()  # a new session remembers the reader's last choice
    assert again.settings.window_preset() == "Bone"
    open_and_wait(qtbot, again, other)
    assert again.toolbar_widgets.presets.currentText() == "Bone"


def three_chests(folder: Path) -> list[Path]:
    folder.mkdir()
    images = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[:3]
    return [Path(shutil.copy(image, folder / f"chest_{i}.jpg")) for i, image in enumerate(images)]


def deepest_lung_point(mask: np.ndarray) -> tuple[int, int]:
    depth = cv2.distanceTransform((mask > 0).astype(np.uint8), cv2.DIST_L2, 5)
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(col), int(row)


def test_review_moves_on_edits_mark_corrected_and_a_useless_point_says_so(qtbot, make_window, drag, tmp_path):
    paths = three_chests(tmp_path / "chests")
    window = make_window()
    window.open_paths([tmp_path / "chests"])
    qtbot.waitUntil(lambda: window.worklist.count() == 3 and window.document.mask is not None, timeout=MASK_TIMEOUT_MS)
    keys = window.worklist.keys()
    first = window.document.key
    assert first == keys[0] and window.settings.advance_after_review()

    # Accept moves on to the next unreviewed image
    window.acts.accept.trigger()
    assert window.store.get_image(first).status == "accepted"
    qtbot.waitUntil(lambda: window.document.key == keys[1] and window.document.mask is not None, timeout=MASK_TIMEOUT_MS)
    wait_for_model(qtbot, window)

    # a "+" deep inside a lung the mask already covers: no new mask, and the reader is told what to try
    doc = window.document
    before, steps = doc.mask.copy(), doc.undo_stack.count()
    x, y = deepest_lung_point(before)
    window.set_tool("point_positive")
    drag(window.canvas.viewport(), [to_view(window, x, y)])
    qtbot.waitUntil(lambda: window.status.currentMessage() == "No change: try a box or the brush", timeout=MASK_TIMEOUT_MS)
    assert np.array_equal(doc.mask, before) and doc.undo_stack.count() == steps
    assert window.store.get_image(doc.key).status == "unreviewed"

    # a brush stroke on the unreviewed mask makes it "corrected", so Next unreviewed will not come back to it
    h, w = before.shape
    window.set_tool("brush")
    drag(window.canvas.viewport(), [to_view(window, w * 0.5, h * 0.08 + 4 * i) for i in range(8)])
    qtbot.waitUntil(lambda: not np.array_equal(doc.mask, before), timeout=5_000)
    assert window.store.get_image(doc.key).status == "corrected" and window.worklist.status(doc.key) == "corrected"
    assert window.worklist.neighbour(doc.key, 1, only_unreviewed=True) == keys[2]

    # with the setting off, a verdict stays on the image
    window.settings.set_advance_after_review(False)
    window.acts.reject.trigger()
    assert window.document.key == keys[1] and window.store.get_image(keys[1]).status == "rejected"
    assert len(paths) == 3


def visible_image_names(worklist) -> list[str]:
    from app.panels.worklist_filter import KEY_ROLE

    names = []

    def walk(parent):
        for row in range(worklist.proxy.rowCount(parent)):
            index = worklist.proxy.index(row, 0, parent)
            if index.data(KEY_ROLE):
                names.append(index.data())
            walk(index)

    from PySide6.QtCore import QModelIndex

    walk(QModelIndex())
    return names


def test_the_filter_matches_file_status_and_date_never_the_patient_and_keeps_the_open_image(qtbot, make_window, tmp_path):
    gray = cv2.imread(str(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[3]), cv2.IMREAD_GRAYSCALE)
    folder = tmp_path / "export"
    folder.mkdir()
    write_dicom(folder / "IM_A.dcm", gray, PatientName="Doe^Jane", PatientID="PID-777")
    write_dicom(folder / "IM_B.dcm", gray[:, ::-1].copy(), PatientName="Roe^Rich", PatientID="PID-888")
    shutil.copy(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[4], folder / "plain.jpg")
    window = make_window()
    window.open_paths([folder])
    qtbot.waitUntil(lambda: window.worklist.count() == 3 and window.document.mask is not None, timeout=MASK_TIMEOUT_MS)
    wait_for_model(qtbot, window)
    window.settings.set_advance_after_review(False)
    window.set_review("rejected")
    open_key, open_name = window.document.key, window.document.path.name
    opened = []
    window.worklist.image_activated.connect(opened.append)

    def typed(text: str) -> list[str]:
        window.worklist.filter.setText(text)
        qtbot.wait(50)
        return visible_image_names(window.worklist)

    assert typed("Doe") == [] and typed("PID-777") == [] and typed("Jane") == []  # patient fields are not searched
    assert typed("IM_B") == ["IM_B.dcm"]
    # the DICOM groups on the way to a match stay expanded
    group = window.worklist.proxy.index(0, 0)
    while group.isValid() and window.worklist.proxy.rowCount(group):
        assert window.worklist.view.isExpanded(group)
        group = window.worklist.proxy.index(0, 0, group)
    assert typed("rejected") == [open_name]
    from datetime import datetime, timezone

    assert typed(datetime.now(timezone.utc).date().isoformat()) == [open_name]  # the review date
    assert sorted(typed("")) == sorted(["IM_A.dcm", "IM_B.dcm", "plain.jpg"])
    assert opened == [] and window.document.key == open_key and window._opening_key is None  # nothing else opened
    assert window.worklist.current_key() == open_key
