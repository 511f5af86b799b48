"""Bad input never escapes as a traceback: StudyReadError, one line, naming the file and the problem."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.encaps import encapsulate

import core.io.sniff as sniff
from core.io import Study, StudyReadError, load_study
from core.io.loader import load_study as loader_load_study
from tests.shared_data import TWIN_MONO2, shared_file, write_dicom

SMALL = np.arange(64, dtype=np.uint16).reshape(8, 8)


def _refused(path, *patterns: str) -> str:
    """Load ``path``, expect StudyReadError; check the one-line message names the file and problem."""
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    assert str(path) in message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    return message


def test_truncated_uncompressed_dicom(tmp_path):
    data = shared_file("dicom", "RG1_UNCR.dcm").read_bytes()
    cut = tmp_path / "RG1_half.dcm"
    cut.write_bytes(data[: len(data) // 2])
    _refused(cut, r"pixel data is truncated: expected 7198310 bytes, found \d+")


def test_truncated_compressed_dicom(tmp_path):
    data = shared_file("dicom", "RG1_J2KR.dcm").read_bytes()
    cut = tmp_path / "RG1_J2KR_half.dcm"
    cut.write_bytes(data[: len(data) // 2])
    _refused(cut, r"pixel data is truncated")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.dcm"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _refused(path, "not a DICOM file")


def test_garbage_after_dicm_marker(tmp_path):
    path = tmp_path / "marker.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 8)
    _refused(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    _refused(path, "empty")


def test_text_file_named_dcm(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("Patient notes: this is not an image.\n" * 20)
    _refused(path, "not a DICOM file")


def test_unknown_format_other_extension(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    _refused(path, "unrecognised file format")


def test_truncated_png(tmp_path):
    ok, encoded = cv2.imencode(".png", (np.arange(4096) % 251).astype(np.uint8).reshape(64, 64))
    assert ok
    path = tmp_path / "cut.png"
    path.write_bytes(encoded.tobytes()[: encoded.size // 2])
    _refused(path, "PNG is truncated")


def test_truncated_jpeg(tmp_path):
    data = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0].read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    _refused(path, "JPEG is truncated")


def test_png_named_file_with_garbage(tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(b"this is not a png at all" * 10)
    _refused(path, "not a valid PNG image")


def test_directory(tmp_path):
    _refused(tmp_path, "folder, not a file")


def test_missing_file(tmp_path):
    _refused(tmp_path / "nope.dcm", "file not found")


def test_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.dcm"
    path.write_bytes(b"x" * 200)

    def deny(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sniff, "open_regular", deny)
    _refused(path, "permission denied")


@pytest.mark.parametrize(
    "syntax, label",
    [
        ("1.2.840.10008.1.2.4.93", r"JPEG 2000 Part 2 Multi-component.*has no installed decoder"),
        ("1.2.840.10008.1.2.4.100", r"MPEG2.*has no installed decoder"),
        ("1.2.3.4.5.6.7", r"1\.2\.3\.4\.5\.6\.7 has no installed decoder"),
    ],
)
def test_unsupported_transfer_syntax(tmp_path, syntax, label):
    path = write_dicom(tmp_path / "ts.dcm", SMALL)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    _refused(path, label)


def test_multi_frame_refused(tmp_path):
    frames = np.stack([SMALL, SMALL, SMALL])
    path = write_dicom(tmp_path / "mf.dcm", frames, NumberOfFrames=3)
    _refused(path, r"multi-frame object \(3 frames\)", "single-frame")


def test_missing_pixel_data(tmp_path):
    path = write_dicom(tmp_path / "nopix.dcm", SMALL)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path, enforce_file_format=True)
    _refused(path, "no pixel data")


def test_absurd_dimensions_refused_before_decoding(tmp_path):
    path = write_dicom(tmp_path / "huge.dcm", SMALL, Rows=30000, Columns=30000)
    _refused(path, r"30000x30000 is too large")


def test_palette_colour_radiograph_refused(tmp_path):
    path = write_dicom(tmp_path / "pal.dcm", SMALL.astype(np.uint8), modality="CR", photometric="PALETTE COLOR")
    _refused(path, "palette-colour image")


def test_loader_is_the_package_entry_point():
    assert load_study is loader_load_study


# --- fuzz: only StudyReadError or a valid Study ----------------------------------------------

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load_or_refuse(path) -> None:
    try:
        study = load_study(path)
    except StudyReadError as error:
        assert "\n" not in str(error) and path.name in str(error)
        return
    assert isinstance(study, Study)
    assert study.pixels.ndim == 2 and study.pixels.dtype == np.float32
    assert np.isfinite(study.pixels).all()


@FUZZ
@given(data=st.binary(min_size=0, max_size=2048), dicm=st.booleans(), suffix=st.sampled_from([".dcm", ".png", ""]))
def test_fuzz_random_bytes(tmp_path, data, dicm, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes((b"\0" * 128 + b"DICM" + data) if dicm else data)
    _load_or_refuse(path)


@pytest.fixture(scope="module")
def _fuzz_sources():
    """A JPEG-baseline and a JPEG 2000 file, small enough to decode 30 times quickly."""
    return [shared_file("dicom", name).read_bytes() for name in (TWIN_MONO2, "RG3_J2KI.dcm")]


@FUZZ
@given(which=st.integers(0, 1), fraction=st.floats(0.0, 0.999))
def test_fuzz_truncated_real_files(tmp_path, _fuzz_sources, which, fraction):
    data = _fuzz_sources[which]
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: int(len(data) * fraction)])
    _load_or_refuse(path)
