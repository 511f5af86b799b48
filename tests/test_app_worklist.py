"""Folder import into the worklist, Problems for bad files, and next/previous unreviewed."""

from __future__ import annotations

import shutil

from tests.shared_data import shared_file

MASK_TIMEOUT_MS = 60_000


def test_folder_import_builds_tree_lists_problems_and_navigates(qtbot, make_window, tmp_path):
    folder = tmp_path / "import"
    (folder / "sub").mkdir(parents=True)
    images = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[:2]
    for image in images:
        shutil.copy(image, folder / image.name)
    shutil.copy(shared_file("dicom", "RG1_UNCR.dcm"), folder / "sub" / "IM0001.dcm")
    shutil.copy(shared_file("dicom", "MR2_J2KI.dcm"), folder / "sub" / "mr.dcm")  # refused: not a radiograph
    (folder / "notes.txt").write_text("not a study")

    window = make_window()
    done = []
    window.studies.import_finished.connect(done.append)
    window.open_paths([folder], activate_first=False)
    qtbot.waitUntil(lambda: bool(done), timeout=30_000)

    assert window.worklist.count() == 3
    assert window.problems.count() == 1 and "MR" in window.problems.entries()[0][1]
    root = window.worklist.model.invisibleRootItem()
    top_level = [root.child(r, 0).text() for r in range(root.rowCount())]
    assert images[0].name in top_level and images[1].name in top_level  # PNG/JPEG: flat
    patient = next(root.child(r, 0) for r in range(root.rowCount()) if root.child(r, 0).hasChildren())
    series = patient.child(0, 0).child(0, 0)
    assert series.child(0, 0).text() == "IM0001.dcm"  # DICOM: patient > study > series > image
    assert all(window.worklist.status(k) == "unreviewed" for k in window.worklist.keys())
    assert str(folder) in window.settings.recent_files()

    # open the first, reject it, N goes to the next unreviewed one
    keys = window.worklist.keys()
    window.worklist.select(keys[0])
    qtbot.waitUntil(lambda: window.document.key == keys[0] and window.document.mask is not None, timeout=MASK_TIMEOUT_MS)
    window.acts.reject.trigger()
    assert window.worklist.status(keys[0]) == "rejected"
    # Reject moves on to the next unreviewed image by itself (a setting, on by default)
    qtbot.waitUntil(lambda: window.document.key == keys[1], timeout=MASK_TIMEOUT_MS)
    window.acts.previous_unreviewed.trigger()  # skips the rejected one, wraps to the last
    qtbot.waitUntil(lambda: window.document.key == keys[2], timeout=MASK_TIMEOUT_MS)
    qtbot.waitUntil(lambda: window.document.mask is not None, timeout=MASK_TIMEOUT_MS)
    assert not window.acts.export_seg.isEnabled() or window.document.study.kind == "dicom"
