"""Exports: DICOM SEG read back with highdicom, review CSV without identifiers, PNG masks, lung area maths."""

from __future__ import annotations

import csv
import errno
import logging
import warnings

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest

import core.store.atomic as atomic
from core.export import (
    CSV_COLUMNS,
    ExportError,
    export_dicom_seg,
    export_mask_png,
    export_review_csv,
    lung_area,
    lung_fraction,
)
from core.review.measurements import area_from_pixel_count
from core.store import AnnotationStore, StoreError
from tests.shared_data import write_dicom
from tests.test_store_helpers import (
    JPEG2000,
    JPEG_BASELINE,
    MODEL,
    MODEL_INT8,
    UNCOMPRESSED,
    box_mask,
    dicom_path,
    study_from_dicom,
    study_from_png,
)

PHI = ("Doe^Jane", "PID-12345", "19600101")


def lung_shaped(shape) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    h, w = shape
    cv2.ellipse(mask, (w // 3, h // 2), (w // 8, h // 3), 0, 0, 360, 255, -1)
    cv2.ellipse(mask, (2 * w // 3, h // 2), (w // 8, h // 3), 0, 0, 360, 255, -1)
    return mask


def read_seg(path):
    seg = hd.seg.segread(path)
    return seg, pydicom.dcmread(path)


@pytest.mark.parametrize("orientation, image_left_is", [(["L", "F"], "Right lung"), (["R", "F"], "Left lung"),
                                                       (None, "Right lung (side assumed)")])
def test_dicom_seg_has_a_right_and_a_left_lung_segment_and_the_union_on_request(tmp_path, orientation, image_left_is):
    """Read back with highdicom: segment 1 is the patient's right lung wherever the file puts it."""
    extra = {"PatientOrientation": orientation} if orientation else {}
    gray = np.full((256, 300), 90, np.uint8)
    source_path = write_dicom(tmp_path / "chest.dcm", gray, **extra)
    mask = lung_shaped(gray.shape)  # image-left ellipse and image-right ellipse
    image_left = np.zeros(gray.shape, bool)
    image_left[:, : gray.shape[1] // 2] = True
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    seg, _ = read_seg(export_dicom_seg(source_path, mask, tmp_path / "two.dcm", MODEL, "alice"))
    labels = {n: seg.get_segment_description(n).segment_label for n in seg.get_segment_numbers()}
    assert len(labels) == 2 and image_left_is in labels.values()
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=False)[0]
    left_segment = next(i for i, n in enumerate(sorted(labels)) if labels[n] == image_left_is)
    assert np.array_equal(pixels[..., left_segment] > 0, (mask > 0) & image_left)
    assert np.array_equal(pixels[..., 1 - left_segment] > 0, (mask > 0) & ~image_left)
    merged = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True)[0]
    assert np.array_equal(merged > 0, mask > 0)  # the sides do not overlap: merging gives the mask back

    seg3, _ = read_seg(export_dicom_seg(source_path, mask, tmp_path / "three.dcm", MODEL, "alice", with_union=True))
    assert seg3.get_segment_numbers() == [1, 2, 3]
    union = seg3.get_segment_description(3)
    assert union.segment_label == "Lung" and union.segmented_property_type.value == "39607008"
    both = seg3.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=False, segment_numbers=[3])[0]
    assert np.array_equal(both[..., 0] > 0, mask > 0)


@pytest.mark.parametrize("name", [JPEG2000, JPEG_BASELINE, UNCOMPRESSED])
def test_dicom_seg_round_trip(tmp_path, name):
    source_path = dicom_path(name)
    source = pydicom.dcmread(source_path, stop_before_pixels=True)
    mask = lung_shaped((source.Rows, source.Columns))
    out = export_dicom_seg(source_path, mask, tmp_path / "lung_seg.dcm", MODEL, "alice")
    assert out == tmp_path / "lung_seg.dcm"
    seg, raw = read_seg(out)

    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source.SeriesInstanceUID
    assert referenced.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert seg.SegmentationType == "BINARY"
    assert seg.Manufacturer == "AdaQAT" and seg.SeriesDescription == "AI lung segmentation"
    assert str(seg.ContentCreatorName) == "alice^"

    assert seg.get_segment_numbers() == [1, 2]  # the patient's right lung, then the left
    description = seg.get_segment_description(1)
    assert description.segment_label.startswith("Right lung")
    assert description.segmented_property_category.value == "91723000"
    assert description.segmented_property_category.scheme_designator == "SCT"
    assert description.segmented_property_type.value == "3341006"
    assert seg.get_segment_description(2).segmented_property_type.value == "44029006"
    assert description.algorithm_type.value == "AUTOMATIC"
    algorithm = raw.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "lung-lite" and algorithm.AlgorithmVersion == "1.2"
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    assert algorithm.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"

    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True)
    np.testing.assert_array_equal(pixels[0] > 0, mask > 0)

    # identifiers: copied from the source, nothing invented
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        if keyword in source:
            assert str(raw.get(keyword)) == str(source.get(keyword)), keyword
    for element in raw:
        if element.keyword.startswith("Patient") and element.value not in (None, ""):
            assert element.keyword in source and str(source[element.keyword].value) == str(element.value)
    assert raw.StudyInstanceUID == source.StudyInstanceUID
    assert raw.SOPInstanceUID != source.SOPInstanceUID and raw.SeriesInstanceUID != source.SeriesInstanceUID


def test_dicom_seg_semiautomatic_and_int8(tmp_path):
    source_path = dicom_path(JPEG_BASELINE)
    mask = lung_shaped((1024, 1024))
    out = export_dicom_seg(source_path, mask, tmp_path, MODEL_INT8, "Smith^Ann", mask_source="edit")
    assert out.name == JPEG_BASELINE[: -len(".dcm")] + "_seg.dcm"
    seg, raw = read_seg(out)
    assert seg.get_segment_description(1).algorithm_type.value == "SEMIAUTOMATIC"
    algorithm = raw.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmVersion == "1.3 INT8"
    assert str(raw.ContentCreatorName) == "Smith^Ann"
    prompted = export_dicom_seg(source_path, mask, tmp_path / "p.dcm", MODEL, "a", mask_source="prompt")
    assert read_seg(prompted)[0].get_segment_description(1).algorithm_type.value == "SEMIAUTOMATIC"


def test_dicom_seg_refuses_non_dicom_and_wrong_masks(tmp_path):
    png = study_from_png(tmp_path / "image.png")
    with pytest.raises(ExportError, match="image.png: not a DICOM image.*export the mask as PNG instead"):
        export_dicom_seg(png.path, box_mask((64, 80)), tmp_path / "x.dcm", MODEL, "a")
    with pytest.raises(ExportError, match="file not found"):
        export_dicom_seg(tmp_path / "missing.dcm", box_mask((64, 80)), tmp_path / "x.dcm", MODEL, "a")
    with pytest.raises(ExportError, match="the mask is 80x64 pixels but the image is 1024x1024"):
        export_dicom_seg(dicom_path(JPEG_BASELINE), box_mask((64, 80)), tmp_path / "x.dcm", MODEL, "a")
    assert not (tmp_path / "x.dcm").exists()


@pytest.fixture
def phi_dicom(tmp_path):
    """The JPEG-baseline chest image with identifiable patient data added."""
    ds = pydicom.dcmread(dicom_path(JPEG_BASELINE))
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = PHI
    path = tmp_path / "chest.dcm"
    ds.save_as(path)
    return path


def test_review_csv_has_no_identifiers(tmp_path, phi_dicom, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with AnnotationStore(tmp_path / "store") as store:
            study = study_from_dicom(phi_dicom)
            assert study.identifiers.patient_name == "Doe^Jane"  # the store does keep them
            record = store.register_image(study)
            mask = box_mask((1024, 1024), 0, 0, 100, 200)  # 20 000 px
            store.save_mask(record.key, mask, source="model", reader="alice", model=MODEL_INT8)
            store.save_model_mask_if_unreviewed(record.key, mask, MODEL, "bot")
            store.set_review(record.key, "corrected", "left base", reader="alice")
            store.save_mask(record.key, mask, source="edit", reader="alice")
            store.register_image(study_from_png(tmp_path / "plain.png"))
            assert store.get_image(record.key).patient_id == "PID-12345"
            out = export_review_csv(store, tmp_path / "report" / "review.csv")
            export_dicom_seg(phi_dicom, mask, tmp_path / "seg.dcm", MODEL_INT8, "alice", mask_source="edit")
            export_mask_png(mask, tmp_path / "mask.png")
            with pytest.raises(StoreError):
                store.save_mask(record.key, mask[:10], source="edit", reader="a")

    text = out.read_text(encoding="utf-8-sig")
    captured = capsys.readouterr()
    logged = caplog.text + captured.out + captured.err + " ".join(str(w.message) for w in caught)
    for secret in (*PHI, "Doe", "Jane", study.identifiers.study_instance_uid, study.identifiers.series_instance_uid):
        assert secret not in text, secret
        assert secret not in logged, secret
    assert record.key not in logged  # image keys are logged as short hashes only

    rows = list(csv.DictReader(text.splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS
    first, second = rows
    assert first["display_name"] == "chest.dcm" and first["image_key"] == record.key
    assert (first["status"], first["reader"]) == ("corrected", "alice")
    assert first["updated_at"].endswith("+00:00")
    assert first["lung_area_cm2"] == f"{20000 * 0.168 * 0.168 / 100:.2f}" and first["area_unit"] == "cm²"
    assert first["lung_area_px"] == "20000"  # one unit per column: the pixels are there too
    right, left = (float(first[f"lung_area_{s}_cm2"]) for s in ("right", "left"))
    assert right + left == pytest.approx(float(first["lung_area_cm2"]), abs=0.02)
    assert float(first["lung_fraction"]) == pytest.approx(20000 / 1024**2, abs=1e-4)
    assert first["model"] == "lung-lite 1.3 INT8"  # the edit started from the INT8 model's mask
    assert second["display_name"] == "plain.png" and second["status"] == "unreviewed"
    assert second["lung_area_cm2"] == second["lung_area_px"] == second["area_unit"] == second["model"] == ""


def test_review_csv_areas_in_pixels_without_spacing(tmp_path):
    with AnnotationStore(tmp_path / "store") as store:
        key = store.register_image(study_from_png(tmp_path / "=cmd.png", (50, 40))).key
        store.save_mask(key, box_mask((50, 40), 0, 0, 10, 20), source="prompt", reader="r", model=MODEL)
        rows = list(csv.DictReader(export_review_csv(store, tmp_path / "r.csv").read_text("utf-8-sig").splitlines()))
    assert rows[0]["lung_area_px"] == "200" and rows[0]["area_unit"] == "px"
    assert rows[0]["lung_area_cm2"] == rows[0]["lung_area_right_cm2"] == rows[0]["lung_area_left_cm2"] == ""
    assert rows[0]["lung_fraction"] == "0.1000" and rows[0]["model"] == "lung-lite 1.2"
    assert rows[0]["display_name"] == "'=cmd.png"  # no formula injection into spreadsheets


def test_lung_area_and_fraction_math():
    mask = np.zeros((100, 200), np.uint8)
    mask[10:60, 20:60] = 255  # 50 x 40 = 2000 px
    assert lung_area(mask, (0.2, 0.25)) == (pytest.approx(2000 * 0.2 * 0.25 / 100), "cm²")  # 1.0 cm²
    assert lung_area(mask, (0.2, 0.25))[0] == pytest.approx(1.0)
    assert lung_area(mask, (0.143, 0.143))[0] == pytest.approx(2000 * 0.143**2 / 100)
    assert lung_area(mask, None) == (2000.0, "px")
    assert lung_area(mask, (0.0, 0.0)) == (2000.0, "px")
    assert lung_area(mask, (float("nan"), 0.2)) == (2000.0, "px")
    assert lung_area(mask > 0, (1.0, 1.0)) == (pytest.approx(20.0), "cm²")  # 10 mm x 10 mm = 1 cm² per 100 px
    assert lung_fraction(mask) == pytest.approx(0.1)
    assert lung_fraction(np.zeros((4, 4), np.uint8)) == 0.0
    assert area_from_pixel_count(2000, (0.2, 0.25)) == lung_area(mask, (0.2, 0.25))


def test_mask_png_export_round_trip_and_disk_full(tmp_path, monkeypatch):
    mask = box_mask((30, 40)) // 255  # 0/1 input is written as 0/255
    out = export_mask_png(mask, tmp_path / "out" / "mask.png")
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8 and written.ndim == 2
    np.testing.assert_array_equal(written, mask * 255)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(ExportError, match="No space left on device; free disk space and export again"):
        export_mask_png(mask, tmp_path / "out" / "second.png")
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mask.png"]
    with pytest.raises(ExportError, match="2-D"):
        export_mask_png(np.zeros((2, 2, 3)), tmp_path / "bad.png")


def test_dicom_seg_for_dx_with_frame_of_reference_and_missing_type2(tmp_path):
    """A DX with a Frame of Reference but no patient position, and no birth date/sex/study date."""
    from pydicom.uid import generate_uid

    source_path = write_dicom(
        tmp_path / "dx.dcm",
        np.zeros((64, 80), np.uint16),
        FrameOfReferenceUID=generate_uid(),
        ImagerPixelSpacing=[0.2, 0.2],
    )
    source = pydicom.dcmread(source_path)
    mask = box_mask((64, 80))
    out = export_dicom_seg(source_path, mask, tmp_path / "seg.dcm", None, "alice", mask_source="edit")
    seg, raw = read_seg(out)
    assert seg.get_segment_description(1).algorithm_type.value == "MANUAL"
    assert "SegmentationAlgorithmIdentificationSequence" not in raw.SegmentSequence[0]
    assert raw.PatientID == source.PatientID and raw.PatientBirthDate == ""
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], combine_segments=True)
    np.testing.assert_array_equal(pixels[0] > 0, mask > 0)
