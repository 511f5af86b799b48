"""The viewer with a real Orthanc (pytest-qt): Open from PACS lists studies and retrieves one into the
worklist; Accept sends the SEG when the setting says so; the listener's arrivals join the worklist."""

from __future__ import annotations

import pydicom
import pytest
from PySide6.QtCore import Qt

from core.pacs.config import LOCALHOST
from tests.pacs_orthanc import dicom_uids, free_port, loopback, orthanc, our_port, pacs_config  # noqa: F401
from tests.shared_data import shared_file

CHEST = "RG1_UNCR.dcm"
TIMEOUT_MS = 300_000  # generous: a loaded CI machine segments slowly; a pass is usually seconds


def _configure(window, config, tmp_path, **changes) -> None:
    from app.services.pacs_settings import PacsSettings

    pacs = PacsSettings(window.settings)
    pacs.set_config(config.with_changes(**changes))
    pacs.set_study_folder(tmp_path / "pacs-studies")
    pacs.set_outbox_folder(tmp_path / "pacs-outbox")


def _instances(orthanc, study_uid: str, modality: str) -> list:
    return [i for i in orthanc.study_instances(study_uid)
            if orthanc.get(f"/instances/{i['ID']}/simplified-tags").get("Modality") == modality]


def test_open_from_pacs_lists_studies_and_retrieves_one_into_the_worklist(qtbot, make_window, pacs_config, tmp_path):
    window = make_window()
    _configure(window, pacs_config, tmp_path)
    window.acts.open_from_pacs.trigger()
    dialog = window.pacs.dialog
    assert dialog is not None and dialog.isVisible() and "PACS ORTHANC" in dialog.windowTitle()

    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.busy and dialog.table.rowCount() >= 2, timeout=TIMEOUT_MS)
    study_uid, sop_uid = dicom_uids(shared_file("dicom", CHEST))
    rows = [r for r, s in enumerate(dialog.studies) if s.study_uid == study_uid]
    assert rows and "found on PACS ORTHANC" in dialog.message.text()
    patient_id = str(pydicom.dcmread(shared_file("dicom", CHEST), stop_before_pixels=True).PatientID)
    assert dialog.table.item(rows[0], 2).text() == patient_id

    dialog.table.selectRow(rows[0])
    assert dialog.retrieve_button.isEnabled()
    qtbot.mouseClick(dialog.retrieve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.worklist.count() == 1 and window.document.mask is not None, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: not dialog.busy, timeout=TIMEOUT_MS)
    assert "1 image(s) retrieved into the worklist" in dialog.message.text()
    assert window.document.path == tmp_path / "pacs-studies" / study_uid / f"{sop_uid}.dcm"
    [record] = window.store.list_images()
    assert record.study_uid == study_uid


def test_search_with_the_pacs_down_is_one_line_in_the_dialog(qtbot, make_window, pacs_config, orthanc, tmp_path):
    window = make_window()
    _configure(window, pacs_config, tmp_path)
    orthanc.stop()
    dialog = window.pacs.open_dialog()
    qtbot.mouseClick(dialog.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.busy and "not reachable" in dialog.message.text(), timeout=TIMEOUT_MS)
    assert dialog.message.text().startswith("PACS ORTHANC (127.0.0.1:") and "\n" not in dialog.message.text()
    assert dialog.table.rowCount() == 0


def test_accept_sends_seg_and_report_when_the_setting_is_on(qtbot, make_window, pacs_config, orthanc, tmp_path):
    window = make_window()
    _configure(window, pacs_config, tmp_path, send_on_accept=True)
    study_uid, _ = dicom_uids(shared_file("dicom", CHEST))
    window.open_paths([shared_file("dicom", CHEST)])
    qtbot.waitUntil(lambda: window.document.mask is not None, timeout=TIMEOUT_MS)
    assert window.acts.send_to_pacs.isEnabled()
    window.set_review("accepted")
    qtbot.waitUntil(lambda: len(_instances(orthanc, study_uid, "SEG")) == 1, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(window.pacs.outbox().outbox) == 0, timeout=TIMEOUT_MS)
    assert len(_instances(orthanc, study_uid, "SR")) == 1


def test_listener_arrivals_join_the_worklist_while_the_viewer_is_open(qtbot, make_window, pacs_config, orthanc, tmp_path):
    window = make_window()
    _configure(window, pacs_config, tmp_path)
    from app.services.pacs_settings import PacsSettings

    PacsSettings(window.settings).set_listen(True)
    assert window.pacs.start_listener() == ""
    assert window.pacs.listener.running
    _, sop_uid = dicom_uids(shared_file("dicom", CHEST))
    [orthanc_id] = orthanc.post("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}})
    orthanc.post("/modalities/adaqat/store", {"Resources": [orthanc_id], "Synchronous": True})
    qtbot.waitUntil(lambda: window.worklist.count() == 1, timeout=TIMEOUT_MS)
    [record] = window.store.list_images()
    assert window.store.latest_mask(record.key) is not None  # segmented on arrival, before anyone opened it
    confidence, _flags = window.store.latest_qualities(record.key)[record.key]
    qtbot.waitUntil(lambda: window.worklist.confidence(record.key) is not None, timeout=TIMEOUT_MS)
    assert window.worklist.confidence(record.key) == pytest.approx(confidence)  # the worklist's column


def test_pacs_settings_defaults_are_safe_and_round_trip(qtbot, make_window, tmp_path, loopback):
    from app.dialogs.pacs_settings_dialog import PacsSettingsDialog
    from app.services.pacs_settings import PacsSettings

    window = make_window()
    pacs = PacsSettings(window.settings)
    config = pacs.config()
    assert config.accepted_calling_aes == () and config.listen_host == LOCALHOST
    assert not config.send_on_accept and not pacs.listen()
    dialog = window.pacs.open_settings()  # Tools > PACS settings…
    assert isinstance(dialog, PacsSettingsDialog) and dialog.isVisible()
    dialog.pacs_ae.setText("MAINPACS")
    dialog.accepted_aes.setText("MAINPACS, CR-ROOM-2")
    dialog.send_on_accept.setChecked(True)
    dialog.our_ae.setText("BAD\\AE")
    dialog._accept_if_valid()
    assert "not a valid AE title" in dialog.problem.text() and dialog.result() == 0
    dialog.our_ae.setText("READER1")
    dialog.tls_ca.setText(str(tmp_path / "no-such-ca.pem"))
    dialog._accept_if_valid()
    assert "TLS CA file" in dialog.problem.text() and dialog.result() == 0
    dialog.tls_ca.setText("")
    dialog.listen.setChecked(True)  # MAINPACS may call: the listener starts, on 127.0.0.1 only
    dialog.our_port.setValue(free_port())
    dialog._accept_if_valid()  # OK: the window applies the values and starts the listener
    assert dialog.result() == 1
    qtbot.waitUntil(lambda: window.pacs.listener.running, timeout=5_000)
    assert window.pacs.listener.label.startswith("listener READER1 (127.0.0.1:")
    again = PacsSettings(window.settings).config()
    assert (again.pacs_ae, again.our_ae, again.accepted_calling_aes, again.send_on_accept) == (
        "MAINPACS", "READER1", ("MAINPACS", "CR-ROOM-2"), True)


def test_send_with_the_pacs_down_waits_in_the_outbox_with_a_one_line_reason(qtbot, make_window, pacs_config, orthanc,
                                                                               tmp_path):
    window = make_window()
    _configure(window, pacs_config, tmp_path)
    orthanc.stop()
    window.open_paths([shared_file("dicom", CHEST)])
    qtbot.waitUntil(lambda: window.document.mask is not None, timeout=TIMEOUT_MS)
    messages = []
    assert window.pacs.send_current()  # Export > Send to PACS
    window.pacs.outbox().reported.connect(messages.append)
    outbox = window.pacs.outbox().outbox
    qtbot.waitUntil(lambda: len(outbox) == 1 and outbox.pending()[0].attempts >= 1, timeout=TIMEOUT_MS)
    reason = outbox.pending()[0].last_error
    assert reason.startswith(f"PACS ORTHANC (127.0.0.1:{orthanc.dicom_port}): study 20040826 THORAX: not reachable")
    qtbot.waitUntil(lambda: any("waiting in the outbox" in m for m in messages), timeout=TIMEOUT_MS)


def test_an_outbox_folder_that_cannot_be_used_is_a_status_line(qtbot, make_window, tmp_path, loopback):
    from app.services.pacs_settings import PacsSettings

    window = make_window()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    PacsSettings(window.settings).set_outbox_folder(blocker / "outbox")
    window.open_paths([shared_file("dicom", CHEST)])
    qtbot.waitUntil(lambda: window.document.mask is not None, timeout=TIMEOUT_MS)
    assert window.pacs.send_current() is False
    assert "PACS outbox" in window.status.currentMessage() and "cannot be opened" in window.status.currentMessage()
