"""Send back against a real Orthanc: the SEG and lung-area SR land under the right study, and results
queued while the PACS is down are sent after it comes back, also when the outbox was reopened."""

from __future__ import annotations

import time

import highdicom as hd
import numpy as np
import pydicom
import pytest

from core.review.measurements import lung_area
from core.io import load_study
from core.io.model_input import model_gray
from core.pacs.outbox import Outbox, OutboxRetrier
from core.pacs.results import queue_results
from core.segment.predictor import Predictor
from tests.pacs_orthanc import dicom_uids, loopback, orthanc, our_port, pacs_config  # noqa: F401 (fixtures)
from tests.shared_data import shared_file

CHEST = "RG1_UNCR.dcm"


@pytest.fixture(scope="module")
def segmented(loaded_model):
    """A real automatic mask of the shared chest CR, with its study (spacing for the area)."""
    path = shared_file("dicom", CHEST)
    study = load_study(path)
    result = Predictor(loaded_model).segment(model_gray(study))
    assert result.mask.any()
    return path, study, result


def _instances_by_modality(orthanc, study_uid: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for instance in orthanc.study_instances(study_uid):
        tags = orthanc.get(f"/instances/{instance['ID']}/simplified-tags")
        out.setdefault(tags.get("Modality", ""), []).append(instance)
    return out


def test_seg_and_report_sent_back_are_stored_under_the_study(pacs_config, orthanc, segmented, tmp_path):
    path, study, result = segmented
    study_uid, sop_uid = dicom_uids(path)
    outbox = Outbox(tmp_path / "outbox")
    queue_results(outbox, path, result.mask, result.model, "Dr Test", spacing_mm=study.pixel_spacing_mm)
    assert len(outbox) == 1
    report = outbox.flush(pacs_config)
    assert (report.sent, report.waiting, report.errors) == (1, 0, [])
    assert len(outbox) == 0 and not list((tmp_path / "outbox" / "files").iterdir())

    stored = _instances_by_modality(orthanc, study_uid)
    assert len(stored.get("SEG", [])) == 1 and len(stored.get("SR", [])) == 1
    seg_file = tmp_path / "back_seg.dcm"
    seg_file.write_bytes(orthanc.get_bytes(f"/instances/{stored['SEG'][0]['ID']}/file"))
    seg = hd.seg.segread(seg_file)
    assert seg.StudyInstanceUID == study_uid
    assert seg.SeriesInstanceUID != pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
    referenced = [i.ReferencedSOPInstanceUID for s in seg.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence]
    assert referenced == [sop_uid]
    assert seg.get_segment_numbers() == [1, 2]  # right lung, left lung
    pixels = seg.get_pixels_by_source_instance([sop_uid], combine_segments=True)
    assert np.array_equal(np.asarray(pixels)[0] > 0, result.mask > 0)

    sr_file = tmp_path / "back_sr.dcm"
    sr_file.write_bytes(orthanc.get_bytes(f"/instances/{stored['SR'][0]['ID']}/file"))
    sr = hd.sr.srread(sr_file)
    assert sr.StudyInstanceUID == study_uid
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len(seg.SegmentSequence)  # one area per segment (both lungs, or each lung)
    expected, unit = lung_area(result.mask, study.pixel_spacing_mm)
    areas = {}
    for group, item in zip(groups, seg.SegmentSequence):
        [measurement] = group.get_measurements()
        assert measurement.unit.value == ("cm2" if unit == "cm²" else "{pixels}")
        segment_pixels = seg.get_pixels_by_source_instance([sop_uid], segment_numbers=[item.SegmentNumber])[0, ..., 0]
        assert measurement.value == pytest.approx(lung_area(segment_pixels, study.pixel_spacing_mm)[0], abs=1e-3)
        areas[str(item.SegmentLabel)] = measurement.value
    whole = areas.get("Lung", sum(areas.values()))  # the union segment if the SEG has one, else the sides add up
    assert whole == pytest.approx(expected, rel=1e-4)


def test_pacs_down_then_restarted_empties_the_queue(pacs_config, orthanc, segmented, tmp_path):
    path, study, result = segmented
    study_uid, _ = dicom_uids(path)
    orthanc.stop()
    outbox = Outbox(tmp_path / "outbox")
    queue_results(outbox, path, result.mask, result.model, "Dr Test", spacing_mm=study.pixel_spacing_mm)
    report = outbox.flush(pacs_config)
    assert (report.sent, report.waiting) == (0, 1)
    message = report.errors[0]
    assert f"PACS ORTHANC (127.0.0.1:{orthanc.dicom_port})" in message and "study " in message
    assert "not reachable" in message and "\n" not in message
    outbox.close()  # the app is closed while the PACS is down ...

    reopened = Outbox(tmp_path / "outbox")  # ... and started again: the result is still queued
    [item] = reopened.pending()
    assert item.attempts == 1 and item.last_error == message and all(p.is_file() for p in item.files)

    orthanc.start()  # the PACS is back, with its storage
    reports = []
    retrier = OutboxRetrier(reopened, lambda: pacs_config, interval_s=0.2, on_report=reports.append)
    retrier.start()
    try:
        deadline = time.monotonic() + 30
        while len(reopened) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        retrier.stop()
    assert len(reopened) == 0 and reports and reports[-1].sent == 1
    assert {"SEG", "SR"} <= set(_instances_by_modality(orthanc, study_uid))
