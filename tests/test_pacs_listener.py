"""Receive against a real Orthanc: images pushed by the PACS are stored atomically and segmented on
arrival (library and ``adaqat listen``); a calling AE title that is not allowed is rejected."""

from __future__ import annotations

import threading
import time

import pytest
from pynetdicom import AE

from core.pacs import PacsConfig, PacsError
from core.pacs.arrivals import ArrivalSegmenter
from core.pacs.listener import StorageListener
from core.pacs.send import send_files
from core.segment.predictor import Predictor
from core.store import AnnotationStore
from tests.pacs_orthanc import LOOPBACK, ORTHANC_AE, OUR_AE, dicom_uids, loopback, orthanc, our_port, pacs_config  # noqa: F401
from tests.shared_data import shared_file

CHEST = "RG1_UNCR.dcm"


def _orthanc_id(orthanc, sop_uid: str) -> str:
    [found] = orthanc.post("/tools/find", {"Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}})
    return found


def _push(orthanc, sop_uid: str) -> dict:
    """The PACS sends one instance to our AE (Orthanc's own C-STORE SCU, a real push)."""
    return orthanc.post("/modalities/adaqat/store", {"Resources": [_orthanc_id(orthanc, sop_uid)], "Synchronous": True})


def _wait(predicate, timeout_s: float = 300.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def receiving(pacs_config, loaded_model, tmp_path):
    """Our listener (accepting ORTHANC) feeding an arrival segmenter that writes into a store."""
    store = AnnotationStore(tmp_path / "store")
    arrivals = []
    segmenter = ArrivalSegmenter(store, lambda: Predictor(loaded_model), on_done=arrivals.append)
    segmenter.start()
    listener = StorageListener(pacs_config, tmp_path / "inbox", on_stored=segmenter.submit)
    listener.start()
    yield listener, segmenter, store, arrivals
    listener.stop()
    segmenter.stop()
    store.close()


def test_pushed_chest_xray_is_stored_and_segmented_on_arrival(orthanc, receiving, tmp_path):
    listener, segmenter, store, arrivals = receiving
    study_uid, sop_uid = dicom_uids(shared_file("dicom", CHEST))
    _push(orthanc, sop_uid)
    assert _wait(lambda: len(arrivals) == 1)
    [arrival] = arrivals
    assert arrival.error == "" and arrival.saved
    assert arrival.path == tmp_path / "inbox" / study_uid / f"{sop_uid}.dcm"
    assert not list((tmp_path / "inbox").rglob("*.tmp"))
    record = store.get_image(arrival.key)
    assert record is not None and record.status == "unreviewed"
    revision = store.latest_revision(arrival.key)
    assert revision.source == "model"
    assert arrival.confidence is not None and 0.0 <= arrival.confidence <= 1.0
    confidence, _flags = store.latest_qualities(arrival.key)[arrival.key]  # what the worklist's column shows
    assert confidence == pytest.approx(arrival.confidence)
    mask = store.latest_mask(arrival.key)
    assert mask.shape == (record.height, record.width) and 0.05 < (mask > 0).mean() < 0.8


def test_a_pushed_extremity_is_segmented_with_the_loaders_warning(orthanc, receiving):
    listener, segmenter, store, arrivals = receiving
    _, sop_uid = dicom_uids(shared_file("dicom", "RG3_J2KI.dcm"))  # CR of an extremity: opened with a warning
    _push(orthanc, sop_uid)
    assert _wait(lambda: len(arrivals) == 1)
    assert arrivals[0].saved and any("is not a chest" in w for w in arrivals[0].warnings)


def test_a_damaged_arrival_is_one_line_and_the_worker_goes_on(receiving, tmp_path, loopback):
    listener, segmenter, store, arrivals = receiving
    broken = tmp_path / "inbox" / "1.2.3" / "4.5.6.dcm"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(shared_file("dicom", CHEST).read_bytes()[:3000])
    segmenter.submit(broken)
    segmenter.submit(shared_file("dicom", CHEST))
    assert _wait(lambda: len(arrivals) == 2)
    assert arrivals[0].error.startswith("4.5.6.dcm") or "4.5.6.dcm" in arrivals[0].error
    assert "\n" not in arrivals[0].error and not arrivals[0].saved
    assert arrivals[1].saved and not arrivals[1].error
    assert len(store.list_images()) == 1


def test_calling_ae_title_that_is_not_allowed_is_rejected(receiving, pacs_config, tmp_path):
    listener, *_ = receiving
    intruder = AE(ae_title="INTRUDER")
    intruder.add_requested_context("1.2.840.10008.1.1")
    assoc = intruder.associate(LOOPBACK, listener.port, ae_title=OUR_AE, bind_address=(LOOPBACK, 0))
    assert assoc.is_rejected and not assoc.is_established

    as_intruder = PacsConfig(pacs_ae=OUR_AE, pacs_port=listener.port, our_ae="INTRUDER", connect_timeout_s=3, timeout_s=10)
    with pytest.raises(PacsError, match=r"^PACS ADAQAT \(127\.0\.0\.1:\d+\): push: association rejected"):
        send_files(as_intruder, [shared_file("dicom", CHEST)], "push")
    assert listener.stored == 0 and not (tmp_path / "inbox").exists() or not any((tmp_path / "inbox").rglob("*.dcm"))


def test_listener_accepts_nobody_by_default(tmp_path, loopback, our_port):
    listener = StorageListener(PacsConfig(our_port=our_port), tmp_path / "inbox")
    with pytest.raises(PacsError, match="no calling AE title is accepted"):
        listener.start()
    assert not listener.running


def test_adaqat_listen_receives_and_segments(orthanc, our_port, tmp_path, capsys):
    import argparse

    from core.cli import listen_command

    parser = argparse.ArgumentParser(prog="adaqat")
    listen_command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["listen", "--port", str(our_port), "--ae-title", OUR_AE, "--inbox",
                                      str(tmp_path / "inbox"), "--allow", ORTHANC_AE, "--model", "default"])
    stop, ready, status = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=lambda: status.append(listen_command.run(args, stop, ready)))
    thread.start()
    try:
        assert ready.wait(120)
        study_uid, sop_uid = dicom_uids(shared_file("dicom", CHEST))
        _push(orthanc, sop_uid)
        assert _wait(lambda: (tmp_path / "inbox" / study_uid / f"{sop_uid}.dcm").is_file())
    finally:
        stop.set()
        thread.join(900)
    assert status == [0]
    out = capsys.readouterr().out
    assert f"listening as {OUR_AE} on 127.0.0.1:{our_port}; accepting {ORTHANC_AE}" in out
    assert f"segmented: {sop_uid}.dcm: lung fraction" in out
    assert "stopped: 1 image(s) received, 1 processed" in out
    with AnnotationStore(tmp_path / "inbox" / "store") as store:
        [record] = store.list_images()
        assert store.latest_mask(record.key) is not None


def test_adaqat_listen_without_allowed_callers_is_one_error_line(tmp_path, capsys):
    from core.cli import main

    assert main(["listen", "--port", "11112", "--ae-title", OUR_AE, "--inbox", str(tmp_path / "inbox")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no calling AE title is allowed")
