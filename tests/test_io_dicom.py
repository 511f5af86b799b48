"""DICOM reading: every shared file opens or is refused for its specific reason; synthetic headers."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence

from core.io import Study, StudyReadError, load_study
from core.io.dicom_reader import read_dicom
from core.io.display import render
from core.io.policy import NO_SPACING_WARNING
from tests.shared_data import TWIN_MONO2, shared_file, write_dicom


@lru_cache(maxsize=None)
def _shared(name: str) -> Study:
    """Each shared file is decoded once per test session (the RG1 files are 3.6 Mpixel)."""
    return load_study(shared_file("dicom", name))


# --- the shared DICOM objects ----------------------------------------------------------------

# name -> (shape, photometric, bits_stored, mean range, std range, min, max). Stats measured once
# with pydicom 3.0 + pylibjpeg; ranges leave room for decoder differences only.
OPENED = {
    "RG1_UNCR.dcm": ((1955, 1841), "MONOCHROME1", 15, (7391.0, 7392.0), (4568.0, 4569.5), 874, 26479),
    "RG1_J2KR.dcm": ((1955, 1841), "MONOCHROME1", 15, (7391.0, 7392.0), (4568.0, 4569.5), 874, 26479),
    "RG1_J2KI.dcm": ((1955, 1841), "MONOCHROME1", 15, (7385.0, 7398.0), (4560.0, 4577.0), None, None),
    TWIN_MONO2: ((1024, 1024), "MONOCHROME2", 8, (160.0, 161.0), (53.5, 54.2), 0, 255),
    "Fake_MONOHR1.dcm": ((1024, 1024), "MONOCHROME1", 8, (160.0, 161.0), (53.5, 54.2), 0, 255),
    "RG3_J2KI.dcm": ((1760, 1760), "MONOCHROME1", 10, (331.5, 334.0), (381.0, 383.5), 0, 1023),
}


@pytest.mark.parametrize("name", sorted(OPENED))
def test_shared_radiographs_open(name):
    shape, photometric, bits, mean_range, std_range, lo, hi = OPENED[name]
    study = _shared(name)
    assert study.kind == "dicom"
    assert study.pixels.shape == shape
    assert study.pixels.dtype == np.float32
    assert study.photometric == photometric
    assert study.inverted == (photometric == "MONOCHROME1")
    assert study.modality == "CR"
    assert study.bits_stored == bits
    assert mean_range[0] < float(study.pixels.mean()) < mean_range[1]
    assert std_range[0] < float(study.pixels.std()) < std_range[1]
    if lo is not None:
        assert study.pixels.min() == lo and study.pixels.max() == hi
    assert study.identifiers.sop_instance_uid  # identifiers are collected ...
    assert all(study.identifiers.patient_id not in w for w in study.warnings if study.identifiers.patient_id)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG1_J2KI.dcm"])
def test_rg1_presets_and_zero_spacing(name):
    study = _shared(name)
    assert [(p.name, p.center, p.width, p.function) for p in study.window_presets] == [
        ("File window 1", 15000.0, 30000.0, "LINEAR")
    ]
    # RG1 carries PixelSpacing 0\0, which is no spacing at all.
    assert study.pixel_spacing_mm is None and study.spacing_source == "none"
    assert any(w.startswith(NO_SPACING_WARNING) for w in study.warnings)
    assert study.body_part == "CHEST" and study.view_position == "PA"


def test_twin_has_pixel_spacing_and_no_presets():
    study = _shared(TWIN_MONO2)
    assert study.pixel_spacing_mm == pytest.approx((0.168, 0.168))
    assert study.spacing_source == "PixelSpacing"
    assert study.window_presets == [] and study.voi_lut is None
    assert study.warnings == []


def test_lossless_j2k_equals_uncompressed():
    assert np.array_equal(_shared("RG1_UNCR.dcm").pixels, _shared("RG1_J2KR.dcm").pixels)


def test_lossy_j2k_is_close():
    reference = _shared("RG1_UNCR.dcm").pixels
    lossy = _shared("RG1_J2KI.dcm").pixels
    diff = np.abs(reference - lossy)
    assert 0 < float(diff.mean()) < 100  # measured 50.1 on a 0..26479 image (std 4569)
    assert float(diff.mean()) < 0.02 * float(reference.std())


def test_fake_monochrome1_has_the_twin_pixels():
    assert np.array_equal(_shared("Fake_MONOHR1.dcm").pixels, _shared(TWIN_MONO2).pixels)


def test_rg3_extremity_opens_with_chest_warning():
    study = _shared("RG3_J2KI.dcm")
    assert study.body_part == "EXTREMITY"
    assert any("body part 'EXTREMITY'" in w and "chest X-rays" in w and "check the mask" in w for w in study.warnings)
    assert study.window_presets[0].center == 550 and study.window_presets[0].width == 1024


@pytest.mark.parametrize(
    "name, words",
    [
        ("MR2_J2KI.dcm", ["modality MR is not a radiograph", "chest X-rays"]),
        ("JPEG-LL.dcm", ["modality NM is not a radiograph"]),
        ("OBXXXX1A_rle.dcm", ["modality US is not a radiograph", "palette-colour"]),
    ],
)
def test_non_radiographs_are_refused(name, words):
    path = shared_file("dicom", name)
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    message = str(info.value)
    assert name in message and "\n" not in message
    for word in words:
        assert word in message


def test_every_shared_dicom_is_covered():
    names = {p.name for p in shared_file("dicom").glob("*.dcm")}
    assert names == set(OPENED) | {"MR2_J2KI.dcm", "JPEG-LL.dcm", "OBXXXX1A_rle.dcm"}


def test_file_without_preamble_opens(tmp_path):
    source = shared_file("dicom", TWIN_MONO2).read_bytes()
    stripped = tmp_path / "IM0001"
    stripped.write_bytes(source[132:])  # no preamble, no 'DICM'; starts with group 0002
    assert np.array_equal(load_study(stripped).pixels, _shared(TWIN_MONO2).pixels)


def test_dataset_without_file_meta_opens(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8))
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    raw = tmp_path / "raw.dcm"
    dcmwrite(raw, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    study = load_study(raw)
    assert np.array_equal(study.pixels, np.arange(64, dtype=np.float32).reshape(8, 8))


# --- synthetic headers -----------------------------------------------------------------------

GRADIENT = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 16).astype(np.uint16)


@pytest.mark.parametrize(
    "elements, expected, source",
    [
        ({"ImagerPixelSpacing": [0.139, 0.14], "PixelSpacing": [0.2, 0.2]}, (0.139, 0.14), "ImagerPixelSpacing"),
        ({"PixelSpacing": [0.2, 0.25]}, (0.2, 0.25), "PixelSpacing"),
        ({"ImagerPixelSpacing": [0, 0], "PixelSpacing": [0.2, 0.2]}, (0.2, 0.2), "PixelSpacing"),
        ({}, None, "none"),
    ],
)
def test_spacing_fallbacks(tmp_path, elements, expected, source):
    study = read_dicom(write_dicom(tmp_path / "s.dcm", GRADIENT, **elements))
    assert study.spacing_source == source
    if expected is None:
        assert study.pixel_spacing_mm is None
        assert NO_SPACING_WARNING in study.warnings
    else:
        assert study.pixel_spacing_mm == pytest.approx(expected)
        assert not any(w.startswith(NO_SPACING_WARNING) for w in study.warnings)


def test_multi_valued_windows_with_names_and_function(tmp_path):
    path = write_dicom(
        tmp_path / "w.dcm",
        GRADIENT,
        WindowCenter=[2000, 1500, 1000],
        WindowWidth=[4000, 1000, 500],
        WindowCenterWidthExplanation=["NORMAL", "", "HARD"],
        VOILUTFunction="SIGMOID",
    )
    presets = read_dicom(path).window_presets
    assert [(p.name, p.center, p.width, p.function) for p in presets] == [
        ("NORMAL", 2000.0, 4000.0, "SIGMOID"),
        ("File window 2", 1500.0, 1000.0, "SIGMOID"),
        ("HARD", 1000.0, 500.0, "SIGMOID"),
    ]


def test_invalid_window_is_skipped_with_warning(tmp_path):
    path = write_dicom(tmp_path / "w.dcm", GRADIENT, WindowCenter=[100, 200], WindowWidth=[0, 50])
    study = read_dicom(path)
    assert [(p.name, p.center) for p in study.window_presets] == [("File window 2", 200.0)]
    assert any("file window 1" in w for w in study.warnings)


def _voi_item(descriptor, table, as_bytes):
    item = Dataset()
    item.LUTDescriptor = descriptor
    if as_bytes:
        item.LUTData = np.asarray(table, dtype="<u2").tobytes()
        item["LUTData"].VR = "OW"
    else:
        item.LUTData = [int(v) for v in table]
        item["LUTData"].VR = "US"
    item.LUTExplanation = "TEST LUT"
    return item


@pytest.mark.parametrize("as_bytes", [False, True], ids=["US", "OW"])
def test_voi_lut_sequence(tmp_path, as_bytes):
    table = np.linspace(0, 4095, 256).round().astype(np.uint16)
    pixels = np.array([[0, 100, 101, 227], [355, 356, 4000, 150]], dtype=np.uint16)
    path = write_dicom(
        tmp_path / "lut.dcm",
        pixels,
        VOILUTSequence=Sequence([_voi_item([256, 100, 12], table, as_bytes)]),
        WindowCenter=2048,
        WindowWidth=4096,
    )
    study = read_dicom(path)
    assert np.array_equal(study.voi_lut, table)
    assert study.voi_lut_first_mapped == 100 and study.voi_lut_bits == 12
    assert len(study.window_presets) == 1  # windows are still offered as presets
    expected_unit = table[np.clip(pixels.astype(int) - 100, 0, 255)] / 4095.0
    assert np.array_equal(render(study, invert=False), np.rint(expected_unit * 255).astype(np.uint8))


def test_rescale_slope_intercept_applied(tmp_path):
    path = write_dicom(tmp_path / "r.dcm", GRADIENT, RescaleSlope=0.5, RescaleIntercept=-100)
    study = read_dicom(path)
    assert study.pixels.dtype == np.float32
    assert np.allclose(study.pixels, GRADIENT * 0.5 - 100)


def test_modality_lut_sequence_applied(tmp_path):
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.LUTData = [int(v) for v in (np.arange(4096) * 2)]
    item["LUTData"].VR = "US"
    item.ModalityLUTType = "US"
    pixels = np.array([[0, 1], [2, 4095]], dtype=np.uint16)
    study = read_dicom(write_dicom(tmp_path / "m.dcm", pixels, ModalityLUTSequence=Sequence([item])))
    assert np.array_equal(study.pixels, pixels.astype(np.float32) * 2)


def test_presentation_lut_inverse_and_identifiers(tmp_path):
    study = read_dicom(write_dicom(tmp_path / "p.dcm", GRADIENT, PresentationLUTShape="INVERSE", ViewPosition="AP"))
    assert study.presentation_inverse and study.inverted and study.photometric == "MONOCHROME2"
    assert study.view_position == "AP"
    assert study.identifiers.patient_id == "SYN-0001" and study.identifiers.patient_name == "Test^Synthetic"
    assert not any("SYN-0001" in w or "Synthetic" in w for w in study.warnings)


@pytest.mark.parametrize(
    "modality, note", [(None, "modality not stated"), ("OT", "modality OT"), ("SC", "modality SC")]
)
def test_uncertain_modalities_open_with_warning(tmp_path, modality, note):
    study = read_dicom(write_dicom(tmp_path / "u.dcm", GRADIENT, modality=modality))
    assert any(note in w and "chest X-ray" in w for w in study.warnings)


@pytest.mark.parametrize(
    "modality, pattern",
    [
        ("CT", "modality CT is not a radiograph"),
        ("PT", "modality PT is not a radiograph"),
        ("MG", r"modality MG \(mammography\) is not a chest radiograph"),
        ("XA", r"modality XA \(X-ray angiography\) is not a chest radiograph"),
    ],
)
def test_other_modalities_refused(tmp_path, modality, pattern):
    with pytest.raises(StudyReadError, match=pattern):
        read_dicom(write_dicom(tmp_path / "x.dcm", GRADIENT, modality=modality))


@pytest.mark.parametrize("body_part, warned", [("HAND", True), ("CHEST", False), ("THORAX", False), ("LUNG", False)])
def test_body_part_warning(tmp_path, body_part, warned):
    study = read_dicom(write_dicom(tmp_path / "b.dcm", GRADIENT, modality="DX", BodyPartExamined=body_part))
    assert any(f"body part '{body_part}'" in w for w in study.warnings) == warned


def test_rgb_dicom_becomes_luminance(tmp_path):
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    rgb[..., 1] = 100
    rgb[..., 2] = 50
    study = read_dicom(write_dicom(tmp_path / "c.dcm", rgb, modality="OT", photometric="RGB"))
    assert study.pixels.shape == (4, 4)
    assert np.allclose(study.pixels, 0.299 * 200 + 0.587 * 100 + 0.114 * 50, atol=0.01)
    assert study.photometric == "MONOCHROME2"
    assert any("colour image" in w for w in study.warnings)
