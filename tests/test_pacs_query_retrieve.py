"""Find and fetch against a real Orthanc: C-FIND by each search field, C-GET into the study folder."""

from __future__ import annotations

import pydicom
import pytest

from core.pacs import PacsError
from core.pacs.query import StudyQuery, find_studies
from core.pacs.retrieve import retrieve_study
from tests.pacs_orthanc import dicom_uids, loopback, orthanc, our_port, pacs_config  # noqa: F401 (fixtures)
from tests.shared_data import shared_file

CHEST = "RG1_UNCR.dcm"


def test_query_lists_chest_studies_only(pacs_config):
    studies = find_studies(pacs_config, StudyQuery())
    uids = {s.study_uid for s in studies}
    chest_uid, _ = dicom_uids(shared_file("dicom", CHEST))
    mr_uid, _ = dicom_uids(shared_file("dicom", "MR2_J2KI.dcm"))
    assert chest_uid in uids
    assert mr_uid not in uids  # MR: not CR/DX
    assert all(set(s.modalities) & {"CR", "DX"} for s in studies)


def test_query_by_patient_id_name_date_and_accession(pacs_config):
    ds = pydicom.dcmread(shared_file("dicom", CHEST), stop_before_pixels=True)
    by_id = find_studies(pacs_config, StudyQuery(patient_id=str(ds.PatientID)))
    assert [s.study_uid for s in by_id] == [str(ds.StudyInstanceUID)]
    assert by_id[0].patient_id == str(ds.PatientID)
    family = str(ds.PatientName).split("^")[0]
    assert str(ds.StudyInstanceUID) in {s.study_uid for s in find_studies(pacs_config, StudyQuery(patient_name=family[:3]))}
    assert find_studies(pacs_config, StudyQuery(patient_id="NOBODY-HAS-THIS-ID")) == []
    if ds.get("StudyDate"):
        from datetime import date

        day = date(int(ds.StudyDate[:4]), int(ds.StudyDate[4:6]), int(ds.StudyDate[6:8]))
        in_range = find_studies(pacs_config, StudyQuery(date_from=day, date_to=day))
        assert str(ds.StudyInstanceUID) in {s.study_uid for s in in_range}
        after = find_studies(pacs_config, StudyQuery(date_from=date(day.year + 1, 1, 1)))
        assert str(ds.StudyInstanceUID) not in {s.study_uid for s in after}
    if ds.get("AccessionNumber"):
        by_accession = find_studies(pacs_config, StudyQuery(accession=str(ds.AccessionNumber)))
        assert str(ds.StudyInstanceUID) in {s.study_uid for s in by_accession}


def test_retrieve_fetches_the_study_into_the_folder(pacs_config, tmp_path):
    study_uid, sop_uid = dicom_uids(shared_file("dicom", CHEST))
    seen = []
    result = retrieve_study(pacs_config, study_uid, tmp_path / "studies", progress=lambda done, total: seen.append((done, total)))
    assert not result.cancelled and result.failed == 0
    assert [p.name for p in result.paths] == [f"{sop_uid}.dcm"]
    fetched = pydicom.dcmread(result.paths[0])
    assert fetched.SOPInstanceUID == sop_uid and fetched.StudyInstanceUID == study_uid
    assert fetched.pixel_array.shape == (int(fetched.Rows), int(fetched.Columns))
    assert seen[0] == (0, 1) and seen[-1] == (1, 1)
    assert not list((tmp_path / "studies").rglob("*.tmp"))


def test_retrieve_of_a_study_without_cr_or_dx_names_the_pacs_and_study(pacs_config, tmp_path):
    mr_study, _ = dicom_uids(shared_file("dicom", "MR2_J2KI.dcm"))
    with pytest.raises(PacsError) as caught:
        retrieve_study(pacs_config, mr_study, tmp_path, label="study 20240101 MR HEAD")
    message = str(caught.value)
    assert "PACS ORTHANC (127.0.0.1:" in message and "study 20240101 MR HEAD" in message
    assert "no CR or DX" in message and "\n" not in message


def test_retrieve_can_be_cancelled(pacs_config, tmp_path):
    study_uid, _ = dicom_uids(shared_file("dicom", CHEST))
    result = retrieve_study(pacs_config, study_uid, tmp_path, cancelled=lambda: True)
    assert result.cancelled
    assert not list(tmp_path.rglob("*.tmp"))


def test_pacs_down_is_one_line_naming_the_pacs(pacs_config, orthanc):
    orthanc.stop()
    with pytest.raises(PacsError) as caught:
        find_studies(pacs_config, StudyQuery())
    message = str(caught.value)
    assert message.startswith(f"PACS ORTHANC (127.0.0.1:{orthanc.dicom_port}): search: not reachable")


def test_a_retrieve_that_cannot_be_written_is_one_line(pacs_config, tmp_path):
    study_uid, _ = dicom_uids(shared_file("dicom", CHEST))
    blocker = tmp_path / "studies"
    blocker.write_text("a file where the study folder should be")
    with pytest.raises(PacsError) as caught:
        retrieve_study(pacs_config, study_uid, blocker, label="study 20040826 THORAX")
    message = str(caught.value)
    assert "retrieve of study 20040826 THORAX: 1 image(s) could not be written" in message
    assert "free disk space" in message and "\n" not in message


def test_a_pacs_that_does_not_answer_times_out_in_one_line(pacs_config, loopback):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the TCP connection, never says a DICOM word
    try:
        config = pacs_config.with_changes(pacs_port=silent.getsockname()[1], timeout_s=1.5)
        with pytest.raises(PacsError) as caught:
            find_studies(config, StudyQuery())
    finally:
        silent.close()
    assert "search: connected, but no answer to the association request within 1.5 s" in str(caught.value)
