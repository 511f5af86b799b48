"""Issue 12, classes 3, 4, 6 and 7 (readers): files built here are opened right or refused in one line.

Padding, 32-bit pixels, EXIF orientation, truncated deflate, FIFOs, a size header after padding,
header values in messages, escape codes in names. Display is checked against pydicom's own
``apply_modality_lut`` + ``apply_voi_lut``; orientation against PIL's ``exif_transpose``.
"""

from __future__ import annotations

import threading

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageOps
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from core.io import StudyReadError, load_study
from core.io.discover import find_study_files
from core.io.display import default_presets, render
from core.io.model_input import model_gray
from tests.reliability_files import (
    ANATOMY_HI,
    ANATOMY_LO,
    chest_like,
    deflated_dx,
    dx_32bit,
    exif_jpeg,
    fifo,
    padded_dx,
    padded_size_jpeg,
)
from tests.shared_data import write_dicom

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")  # the hostile headers are on purpose


def _refused(path, *words):
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, message
    return message


def _expected_full_range(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    lo, hi = float(values[keep].min()), float(values[keep].max())
    return np.rint(np.clip((values.astype(np.float64) - lo) / (hi - lo), 0, 1) * 255)


# --- 3. padding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [
    {"padding": 0},
    {"padding": 0, "range_limit": 50},
    {"padding": 4095},
    {"padding": 4095, "range_limit": 4000},
    {"padding": -2000, "signed": True},
])
def test_padding_is_left_out_of_the_display_range_and_shown_black(tmp_path, variant):
    path = padded_dx(tmp_path, **variant)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    lo, hi = sorted((variant["padding"], variant.get("range_limit", variant["padding"])))
    padding = (stored >= lo) & (stored <= hi)
    study = load_study(path)
    assert study.padding is not None and np.array_equal(study.padding, padding)
    shown = render(study)
    modality = apply_modality_lut(stored, ds)
    assert apply_voi_lut(modality, ds) is not None  # no window: pydicom leaves the values as they are
    expected = _expected_full_range(modality, ~padding)
    assert np.abs(shown[~padding].astype(int) - expected[~padding]).max() <= 1
    assert (shown[padding] == 0).all()
    assert len(np.unique(shown[~padding])) > 140  # not ~12 bands: the anatomy spans the grey scale
    full = next(p for p in default_presets(study) if p.name == "Full range")
    assert full.center - full.width / 2 >= ANATOMY_LO - 1 and full.center + full.width / 2 <= ANATOMY_HI + 1


def test_padding_never_reaches_the_model_input(tmp_path):
    for variant in ({"padding": 0}, {"padding": 4095, "photometric": "MONOCHROME1"}):
        study = load_study(padded_dx(tmp_path, f"{variant['padding']}.dcm", **variant))
        gray = model_gray(study)
        assert (gray[study.padding] == 0).all()  # black, like the training JPEGs' borders
        inside = gray[~study.padding]
        assert inside.max() - inside.min() > 200  # the percentile window is the anatomy's


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_windowed_padded_display_matches_pydicom(tmp_path, function):
    path = padded_dx(tmp_path, padding=0, WindowCenter=2090, WindowWidth=150, VOILUTFunction=function,
                     RescaleSlope=1, RescaleIntercept=-1024)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    theirs = apply_voi_lut(apply_modality_lut(stored, ds), ds)
    y_min, y_max = -1024.0, 4095.0 - 1024.0  # pydicom's output range: BitsStored range through the rescale
    expected = np.rint(np.clip((theirs - y_min) / (y_max - y_min), 0, 1) * 255)
    study = load_study(path)
    shown = render(study)
    keep = ~study.padding
    assert np.abs(shown[keep].astype(int) - expected[keep]).max() <= 1
    assert (shown[~keep] == 0).all()


# --- 3. 32-bit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True])
def test_32bit_pixels_near_2_31_are_kept_exact(tmp_path, signed):
    path = dx_32bit(tmp_path, signed=signed)
    stored = pydicom.dcmread(path).pixel_array
    study = load_study(path)
    assert np.array_equal(study.pixels, stored.astype(np.float64))  # float32 would round to steps of 128-256
    shown = render(study)
    keep = np.ones(stored.shape, bool)
    assert np.abs(shown.astype(int) - _expected_full_range(stored, keep)).max() <= 1
    assert len(np.unique(shown)) > 240
    gray = model_gray(study)
    assert len(np.unique(gray)) > 200


def test_ordinary_16bit_pixels_stay_float32(tmp_path):
    path = write_dicom(tmp_path / "x.dcm", np.rint(chest_like()).astype(np.uint16), RescaleSlope=1, RescaleIntercept=-1024)
    assert load_study(path).pixels.dtype == np.float32  # memory of large radiographs unchanged


# --- 3. EXIF orientation --------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_is_applied_like_pil(tmp_path, orientation):
    path = exif_jpeg(tmp_path, orientation)
    with Image.open(path) as image:
        stored = np.asarray(image.convert("L"), dtype=np.float64)
        upright = np.asarray(ImageOps.exif_transpose(image).convert("L"), dtype=np.float64)
    pixels = load_study(path).pixels
    assert pixels.shape == upright.shape
    assert np.abs(pixels - upright).mean() < 1.5  # same image, two JPEG decoders
    if orientation in (2, 4, 5, 7):  # the mirrored ones: showing them as stored swaps left and right
        assert pixels.shape != stored.shape or np.abs(pixels - stored).mean() > 5


# --- 4. truncated deflate -------------------------------------------------------------------------


def test_deflated_dicom_opens_and_a_truncated_one_is_refused_in_words(tmp_path):
    whole = load_study(deflated_dx(tmp_path, "whole.dcm"))
    assert whole.pixels.shape == (96, 80)
    for keep in (0.9, 0.5, 0.2):
        message = _refused(deflated_dx(tmp_path, f"cut{keep}.dcm", keep=keep), f"cut{keep}.dcm", "re-export")
        assert "zlib" not in message and "Error -" not in message


# --- 6. FIFOs -------------------------------------------------------------------------------------


def _within(seconds, function, *args):
    """Run ``function`` in a thread; fail (not hang) when it takes longer than ``seconds``."""
    result = {}

    def target():
        try:
            result["value"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{function.__name__} blocked on a pipe"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _unblock(path):
    """Release a reader that did block on ``path`` (so a failing test does not hang the session)."""
    import os

    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_a_fifo_is_refused_without_blocking(tmp_path):
    for name in ("b.dcm", "IM0001", "x.png"):
        pipe = fifo(tmp_path, name)
        try:
            with pytest.raises(StudyReadError) as info:
                _within(5, load_study, pipe)
        finally:
            _unblock(pipe)
        assert "named pipe (FIFO)" in str(info.value) and name in str(info.value)


def test_a_folder_scan_with_fifos_does_not_block(tmp_path):
    real = write_dicom(tmp_path / "real.dcm", np.rint(chest_like()).astype(np.uint16))
    pipes = [fifo(tmp_path, "b.dcm"), fifo(tmp_path, "IM0002")]
    try:
        found = _within(5, find_study_files, tmp_path)
        named = _within(5, find_study_files, [pipes[1]])
    finally:
        for pipe in pipes:
            _unblock(pipe)
    assert real in found and pipes[0] in found and pipes[1] not in found  # b.dcm is taken, then refused
    assert named == [pipes[1]]  # named explicitly: kept, so the user is told why it can't open


# --- 7. size header after padding, header values, escape codes ------------------------------------


@pytest.mark.parametrize("fill", [False, True])
def test_jpeg_size_header_after_128kB_still_hits_the_pixel_limit(tmp_path, fill):
    path = padded_size_jpeg(tmp_path, fill=fill)
    _refused(path, "20000x20000", "too large")


def test_header_values_are_not_echoed_into_messages(tmp_path):
    name = "Doe^Jane"
    cases = [
        ({"modality": name.upper()}, "not a radiograph"),
        ({"photometric": "DOE^JANE"}, "photometric interpretation"),
    ]
    for index, (kwargs, words) in enumerate(cases):
        message = _refused(write_dicom(tmp_path / f"{index}.dcm", np.zeros((8, 8), np.uint16), **kwargs), words)
        assert "DOE" not in message.upper() and "JANE" not in message.upper()
    study = load_study(write_dicom(tmp_path / "w.dcm", np.rint(chest_like()).astype(np.uint16),
                                   BodyPartExamined="Doe^Jane", VOILUTFunction="DOE^JANE", WindowCenter=2100,
                                   WindowWidth=200))
    text = " ".join(study.warnings)
    assert "body part" in text and "VOI LUT function" in text
    assert "DOE" not in text.upper() and "JANE" not in text.upper()


def test_escape_codes_in_file_names_are_escaped_in_messages(tmp_path):
    path = tmp_path / "evil\x1b[2J\x1b]0;owned\x07.dcm"
    path.write_bytes(b"garbage" * 40)
    message = _refused(path, "\\x1b[2J", "\\x07")
    assert "\x1b" not in message and "\x07" not in message
