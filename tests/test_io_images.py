"""PNG/JPEG reading, content-based dispatch, and folder discovery."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from core.io import load_study
from core.io.discover import find_study_files
from core.io.display import render
from core.io.image_reader import read_image
from core.io.model_input import model_gray
from core.io.policy import NO_SPACING_WARNING
from tests.shared_data import TWIN_MONO2, shared_file, write_dicom

RNG = np.random.default_rng(7)
GREY8 = RNG.integers(0, 256, (40, 30), dtype=np.uint8)
GREY16 = RNG.integers(0, 4096, (40, 30), dtype=np.uint16)


def _write(path, image, params=()):
    ok, encoded = cv2.imencode(path.suffix, image, list(params))
    assert ok
    encoded.tofile(str(path))
    return path


def test_png_8bit_exact(tmp_path):
    study = load_study(_write(tmp_path / "g8.png", GREY8))
    assert study.kind == "image" and study.photometric == "MONOCHROME2" and not study.inverted
    assert study.bits_stored == 8 and study.pixels.dtype == np.float32
    assert np.array_equal(study.pixels, GREY8)
    assert study.pixel_spacing_mm is None and study.spacing_source == "none"
    assert NO_SPACING_WARNING in study.warnings
    # 8-bit images reach the model and the screen exactly as stored.
    assert np.array_equal(model_gray(study), GREY8)
    assert np.array_equal(render(study), GREY8)


def test_png_16bit_exact(tmp_path):
    study = load_study(_write(tmp_path / "g16.png", GREY16))
    assert study.bits_stored == 16
    assert np.array_equal(study.pixels, GREY16)
    gray = model_gray(study)
    assert gray.dtype == np.uint8 and gray.shape == GREY16.shape
    assert gray.min() == 0 and gray.max() == 255  # 0.5–99.5 percentile window spans the range


def test_jpeg_8bit_grey(tmp_path):
    smooth = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    study = load_study(_write(tmp_path / "g.jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 98]))
    assert study.pixels.shape == (48, 64) and study.bits_stored == 8
    assert float(np.abs(study.pixels - smooth).mean()) < 2.0
    assert not any("colour" in w for w in study.warnings)


def test_rgb_jpeg_becomes_luminance_with_warning(tmp_path):
    bgr = np.zeros((32, 32, 3), dtype=np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 30, 120, 220  # B, G, R
    study = load_study(_write(tmp_path / "c.jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 100]))
    assert study.pixels.ndim == 2
    expected = 0.299 * 220 + 0.587 * 120 + 0.114 * 30
    assert abs(float(study.pixels.mean()) - expected) < 3
    assert any("colour image converted to grey" in w for w in study.warnings)


def test_grey_saved_as_rgb_png_has_no_colour_warning(tmp_path):
    study = load_study(_write(tmp_path / "rgb.png", np.dstack([GREY8] * 3)))
    assert np.array_equal(study.pixels, GREY8)
    assert not any("colour" in w for w in study.warnings)


def test_alpha_is_dropped(tmp_path):
    alpha = np.full_like(GREY8, 128)
    study = load_study(_write(tmp_path / "a.png", np.dstack([GREY8, GREY8, GREY8, alpha])))
    assert np.array_equal(study.pixels, GREY8)
    assert any("alpha" in w for w in study.warnings)


def test_unicode_path(tmp_path):
    folder = tmp_path / "Ünïcødé 胸部"
    folder.mkdir()
    study = read_image(_write(folder / "röntgen.png", GREY8))
    assert np.array_equal(study.pixels, GREY8)


def test_real_cxr_jpeg():
    path = shared_file("cxr-lungs", "images", "006ce2a73b.jpg")
    study = load_study(path)
    assert study.pixels.shape == (994, 1024) and study.bits_stored == 8
    assert 167.0 < float(study.pixels.mean()) < 167.7  # measured 167.34
    assert 59.5 < float(study.pixels.std()) < 60.0  # measured 59.75
    assert np.array_equal(model_gray(study), study.pixels.astype(np.uint8))


def test_dispatch_by_content_not_extension(tmp_path):
    dicom_as_jpg = tmp_path / "really_dicom.jpg"
    shutil.copy(shared_file("dicom", TWIN_MONO2), dicom_as_jpg)
    assert load_study(dicom_as_jpg).kind == "dicom"
    png_as_dcm = tmp_path / "really_png.dcm"
    _write(tmp_path / "x.png", GREY8).rename(png_as_dcm)
    assert load_study(png_as_dcm).kind == "image"
    extensionless = tmp_path / "IM0001"
    shutil.copy(shared_file("dicom", TWIN_MONO2), extensionless)
    assert load_study(extensionless).kind == "dicom"


def test_find_study_files(tmp_path):
    small = np.arange(16, dtype=np.uint16).reshape(4, 4)
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden_dir").mkdir()
    write_dicom(tmp_path / "b" / "deep" / "IM0002", small)  # extension-less DICOM
    write_dicom(tmp_path / "a.DCM", small)
    write_dicom(tmp_path / ".hidden_dir" / "x.dcm", small)
    write_dicom(tmp_path / "DICOMDIR", small)
    _write(tmp_path / "b" / "c.png", GREY8)
    _write(tmp_path / "b" / "d.jpeg", GREY8)
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / "README").write_text("extension-less, not DICOM")
    found = find_study_files([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.DCM", "b/c.png", "b/d.jpeg", "b/deep/IM0002"]
    # explicit files and duplicates
    again = find_study_files([tmp_path / "b" / "c.png", tmp_path, tmp_path / "notes.txt", tmp_path / "missing.dcm"])
    assert again[0] == tmp_path / "b" / "c.png" and len(again) == 4
    assert find_study_files(str(tmp_path / "a.DCM")) == [tmp_path / "a.DCM"]
