"""The review workflow's defects, on the real window with the real model (pytest-qt).

An edit after accept makes the image "corrected"; the same window/level drag brightens every file;
provenance follows undo; the CSV keeps the reader's note and gives lung area per side; Help lists
every shortcut the window has; "R"/"L" markers and per-side areas follow the DICOM Patient Orientation.
"""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from tests.shared_data import shared_file, write_dicom
from tests.test_app_viewer import open_and_wait, to_view, wait_for_model


def shown_brightness(window) -> float:
    image = window.canvas.current_pixmap().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    array = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), -1)
    return float(array[:, : image.width()].mean())


def chest_dicom(tmp_path, name, orientation=None, mirrored=False):
    gray = cv2.imread(str(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[3]), cv2.IMREAD_GRAYSCALE)
    pixels = np.ascontiguousarray(gray[:, ::-1] if mirrored else gray)
    extra = {"PatientOrientation": orientation} if orientation else {}
    return write_dicom(tmp_path / name, pixels, **extra)


def test_an_edit_after_accept_marks_the_image_corrected(qtbot, make_window, drag, tmp_path):
    window = make_window()
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0]
    open_and_wait(qtbot, window, image)
    doc = window.document
    window.review.note.setText("basal opacity, left")
    window.set_review("accepted")
    assert window.store.get_image(doc.key).status == "accepted"
    h, w = doc.mask.shape
    before = doc.mask.copy()
    window.set_tool("brush")
    drag(window.canvas.viewport(), [to_view(window, w * 0.5, h * 0.1 + 5 * i) for i in range(10)])
    qtbot.waitUntil(lambda: not np.array_equal(doc.mask, before))
    record = window.store.get_image(doc.key)
    assert record.status == "corrected" and record.note == "basal opacity, left"
    assert window.worklist.status(doc.key) == "corrected"
    # the CSV keeps the note and gives each side's area
    rows = list(csv.DictReader(window.exports.export_csv(tmp_path / "review.csv").open(encoding="utf-8-sig")))
    assert rows[0]["note"] == "basal opacity, left" and rows[0]["status"] == "corrected"
    assert int(rows[0]["lung_area_right_px"]) > 0 and int(rows[0]["lung_area_left_px"]) > 0
    assert int(rows[0]["lung_area_right_px"]) + int(rows[0]["lung_area_left_px"]) == int(rows[0]["lung_area_px"])
    assert rows[0]["lung_area_cm2"] == "" and rows[0]["area_unit"] == "px"  # a JPEG has no pixel spacing
    assert rows[0]["sides"] == "assumed"  # a JPEG says nothing about orientation


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_dragging_up_brightens_every_file(qtbot, make_window, drag, tmp_path, photometric):
    ramp = np.tile(np.linspace(0, 4095, 256).astype(np.uint16), (256, 1))
    path = write_dicom(tmp_path / f"{photometric}.dcm", ramp, photometric=photometric, BitsStored=12,
                       WindowCenter=2048, WindowWidth=4096)
    window = make_window()
    open_and_wait(qtbot, window, path)
    before = shown_brightness(window)
    start = window.canvas.viewport().rect().center()
    drag(window.canvas.viewport(), [start, start - QPoint(0, 80), start - QPoint(0, 160)],
         button=Qt.MouseButton.RightButton)
    brighter = shown_brightness(window)
    assert brighter > before + 10, f"{photometric}: drag up made the image darker ({before:.0f} -> {brighter:.0f})"
    window.acts.invert.setChecked(True)  # and still the same way when the user inverts the display
    inverted = shown_brightness(window)
    drag(window.canvas.viewport(), [start, start - QPoint(0, 160)], button=Qt.MouseButton.RightButton)
    assert shown_brightness(window) > inverted + 10


def test_help_lists_every_shortcut_of_the_window(make_window):
    from PySide6.QtGui import QKeySequence

    from app.dialogs.help_dialogs import shortcuts_html

    window = make_window()
    html = shortcuts_html(window.actions())
    with_keys = [a for a in window.actions() if a.shortcuts()]
    assert len(with_keys) > 30
    for action in with_keys:
        for key in action.shortcuts():
            assert key.toString(QKeySequence.SequenceFormat.NativeText).replace("&", "&amp;") in html, action.text()
    assert "right-drag" in html and "Box prompt" in html


def test_sides_follow_patient_orientation(qtbot, make_window, tmp_path):
    window = make_window()
    usual = chest_dicom(tmp_path, "usual.dcm", ["L", "F"])
    mirrored = chest_dicom(tmp_path, "mirrored.dcm", ["R", "F"], mirrored=True)
    areas = {}
    for path, markers in ((usual, ("R", "L", True)), (mirrored, ("L", "R", True))):
        open_and_wait(qtbot, window, path)
        wait_for_model(qtbot, window)
        assert window.canvas.side_markers == markers
        assert window.measurements.sides.text() == "from the file's Patient Orientation"
        areas[path.name] = (int(window.measurements.right.text().split()[0].replace(",", "")),
                            int(window.measurements.left.text().split()[0].replace(",", "")))
    (right_a, left_a), (right_b, left_b) = areas["usual.dcm"], areas["mirrored.dcm"]
    # the same patient: the right lung is the right lung whichever way the file stores it
    assert abs(right_a - right_b) < 0.05 * right_a and abs(left_a - left_b) < 0.05 * left_a
    window.canvas.grab().save(str(tmp_path / "sides.png"))


def xray_dicom(path, index, **elements):
    gray = cv2.imread(str(sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[index]), cv2.IMREAD_GRAYSCALE)
    return write_dicom(path, gray, **elements)


def test_a_file_replaced_since_its_review_never_shows_the_old_mask(qtbot, make_window, tmp_path):
    window = make_window()
    reviewed = xray_dicom(tmp_path / "chest.dcm", 3)
    open_and_wait(qtbot, window, reviewed)
    old_key = window.document.key
    window.set_review("accepted")
    open_and_wait(qtbot, window, xray_dicom(tmp_path / "other.dcm", 7))
    xray_dicom(tmp_path / "chest.dcm", 10)  # another patient's image now sits under the reviewed name
    window.open_key(old_key)
    qtbot.waitUntil(lambda: window.document.path is not None and window.document.path.name == "chest.dcm"
                    and window.document.mask is not None, timeout=60_000)
    doc = window.document
    assert doc.key != old_key and not doc.origin.from_store, "the earlier image's saved mask was shown"
    assert window.store.get_image(old_key).status == "accepted"  # the earlier review is kept
    assert window.store.get_image(doc.key).status != "accepted"
    assert any("file changed since it was listed" in reason for _, reason in window.problems.entries())
    assert window.worklist.count() == 3


def test_a_second_image_with_the_same_uid_is_shown_with_a_warning(qtbot, make_window, tmp_path):
    window = make_window()
    first = xray_dicom(tmp_path / "a.dcm", 3, SOPInstanceUID="2.25.4242")
    second = xray_dicom(tmp_path / "b.dcm", 7, SOPInstanceUID="2.25.4242")
    open_and_wait(qtbot, window, first)
    assert window.info.warnings.isHidden() or "SOPInstanceUID" not in window.info.warnings.text()
    open_and_wait(qtbot, window, second)
    assert not window.info.warnings.isHidden() and "same SOPInstanceUID" in window.info.warnings.text()
    assert window.worklist.count() == 2 and not window.document.origin.from_store
