"""VOI maths (PS3.3 C.11.2.1.2), the display path and the model-input path."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_windowing

from core.io import Study, WindowPreset, load_study
from core.io.display import default_presets, render
from core.io.model_input import model_gray
from core.io.voi import apply_voi_lut, apply_window, to_uint8
from tests.shared_data import TWIN_MONO2, shared_file


@lru_cache(maxsize=None)
def _shared(name: str) -> Study:
    return load_study(shared_file("dicom", name))


def _study(pixels, **fields) -> Study:
    return Study(path=Path("synthetic.dcm"), pixels=np.asarray(pixels, dtype=np.float32), kind="dicom", **fields)


# --- VOI functions ---------------------------------------------------------------------------


def test_linear_edges_follow_the_standard():
    c, w = 2048.0, 4096.0  # lower edge c - 0.5 - (w-1)/2 = 0, upper edge c - 0.5 + (w-1)/2 = 4095
    x = np.array([-10, 0, 0.001, 2047.5, 4094.999, 4095, 4096])
    y = apply_window(x, c, w, "LINEAR")
    assert y.dtype == np.float32
    assert y[0] == 0 and y[1] == 0 and y[-2] == 1 and y[-1] == 1
    assert y[3] == pytest.approx(0.5)
    assert y[2] == pytest.approx(0.001 / 4095 + 0.0, abs=1e-6)


def test_linear_width_one_is_a_threshold():
    y = apply_window(np.array([9.4, 9.5, 9.6, 11]), 10, 1, "LINEAR")
    assert y.tolist() == [0, 0, 1, 1]
    assert apply_window(np.array([9.6]), 10, 0, "LINEAR").tolist() == [1]  # width < 1 raised to 1


def test_linear_exact_edges():
    y = apply_window(np.array([0, 50, 100, 150, 200, 250]), 150, 100, "LINEAR_EXACT")
    assert y.tolist() == pytest.approx([0, 0, 0, 0.5, 1, 1])


def test_sigmoid_values_and_no_overflow():
    c, w = 40.0, 400.0
    x = np.array([c, c + w / 2, c - w / 2, -1e9, 1e9])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = apply_window(x, c, w, "SIGMOID")
    assert y[0] == pytest.approx(0.5)
    assert y[1] == pytest.approx(1 / (1 + np.exp(-2)), rel=1e-6)
    assert y[2] == pytest.approx(1 / (1 + np.exp(2)), rel=1e-6)
    assert y[3] == pytest.approx(0, abs=1e-7) and y[4] == pytest.approx(1)


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_matches_pydicom_apply_windowing(function):
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored = 16
    ds.PixelRepresentation = 0
    ds.WindowCenter = 1000
    ds.WindowWidth = 700
    ds.VOILUTFunction = function
    x = np.arange(0, 2200, 7, dtype=np.uint16)
    theirs = apply_windowing(x.copy(), ds) / 65535.0
    ours = apply_window(x, 1000, 700, function)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_unknown_function_raises():
    with pytest.raises(ValueError, match="unknown VOI LUT function"):
        apply_window(np.zeros(2), 0, 10, "GAMMA")


def test_voi_lut_indexing_and_clamping():
    lut = np.array([0, 100, 200, 4095])
    y = apply_voi_lut(np.array([5, 10, 11, 12, 13, 100]), lut, first_mapped=10, bits=12)
    assert y.tolist() == pytest.approx([0, 0, 100 / 4095, 200 / 4095, 1, 1])


def test_voi_lut_negative_first_mapped():
    y = apply_voi_lut(np.array([-1000, -2, -1, 0]), np.array([10, 20, 30]), first_mapped=-2, bits=8)
    assert y.tolist() == pytest.approx([10 / 255, 10 / 255, 20 / 255, 30 / 255])


def test_to_uint8_inversion_is_exact():
    unit = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.array_equal(to_uint8(unit, invert=True), 255 - to_uint8(unit))


# --- display ---------------------------------------------------------------------------------


def test_monochrome1_renders_as_inverse_of_its_monochrome2_twin():
    fake, twin = _shared("Fake_MONOHR1.dcm"), _shared(TWIN_MONO2)
    assert fake.inverted and not twin.inverted
    diff = render(fake).astype(int) - (255 - render(twin).astype(int))
    assert np.abs(diff).max() <= 1
    diff = model_gray(fake).astype(int) - (255 - model_gray(twin).astype(int))
    assert np.abs(diff).max() <= 1


def test_render_uses_first_file_window_and_inverts_monochrome1():
    study = _shared("RG3_J2KI.dcm")  # MONOCHROME1, window 550/1024
    expected = 255 - to_uint8(apply_window(study.pixels, 550, 1024, "LINEAR"))
    assert np.array_equal(render(study), expected)
    assert np.array_equal(render(study, invert=False), 255 - expected)


def test_render_does_not_modify_pixels():
    study = _study(np.arange(100).reshape(10, 10), window_presets=[WindowPreset("w", 50, 20)])
    before = study.pixels.copy()
    render(study)
    render(study, WindowPreset("s", 30, 10, "SIGMOID"), invert=True)
    model_gray(study)
    default_presets(study)
    assert np.array_equal(study.pixels, before)


def test_render_without_presets_uses_full_range():
    study = _study(np.array([[100, 150], [200, 300]]))
    assert render(study).tolist() == [[0, 64], [128, 255]]


def test_render_prefers_voi_lut_over_window():
    lut = np.array([0, 65535], dtype=np.uint16)
    study = _study(
        np.array([[0, 1]]), voi_lut=lut, voi_lut_first_mapped=0, voi_lut_bits=16,
        window_presets=[WindowPreset("w", 100, 10)],
    )
    assert render(study).tolist() == [[0, 255]]
    assert render(study, study.window_presets[0]).tolist() == [[0, 0]]


def test_presentation_inverse_inverts_once():
    base = dict(window_presets=[WindowPreset("w", 50, 100, "LINEAR_EXACT")])
    plain = render(_study([[0, 25, 100]], **base))
    assert np.array_equal(render(_study([[0, 25, 100]], presentation_inverse=True, **base)), 255 - plain)
    both = _study([[0, 25, 100]], photometric="MONOCHROME1", presentation_inverse=True, **base)
    assert np.array_equal(render(both), 255 - plain)


def test_default_presets_always_offer_choices():
    names = [p.name for p in default_presets(_shared("RG1_UNCR.dcm"))]
    chest = ["Lung", "Mediastinum", "Bone", "Soft tissue"]
    assert names == ["File window 1", *chest, "Full range", "Auto (1–99 %)"]
    bare = default_presets(_study(np.arange(10000).reshape(100, 100)))
    assert [p.name for p in bare] == [*chest, "Full range", "Auto (1–99 %)"]
    full, auto = bare[-2:]
    assert (full.center, full.width) == (4999.5, 9999.0)
    assert auto.center == pytest.approx(4999.5, abs=2) and auto.width == pytest.approx(9800, rel=0.01)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", TWIN_MONO2])  # real MONOCHROME1 and MONOCHROME2 films
def test_chest_presets_show_the_lungs_darker_than_the_spine_on_every_file(name):
    """Lung/Mediastinum/Bone/Soft tissue are bands of the file's own values, mirrored for MONOCHROME1."""
    study = _shared(name)
    presets = {p.name: p for p in default_presets(study)}
    h, w = study.pixels.shape
    lung = (slice(int(h * 0.35), int(h * 0.45)), slice(int(w * 0.25), int(w * 0.32)))  # right lung field
    spine = (slice(int(h * 0.35), int(h * 0.45)), slice(int(w * 0.48), int(w * 0.52)))
    lung_view = render(study, presets["Lung"])
    assert 25 < lung_view[lung].mean() < 200 and lung_view[spine].mean() > lung_view[lung].mean() + 40
    assert render(study, presets["Mediastinum"])[lung].mean() < 60  # the lungs go dark, the mediastinum opens up
    shown = [render(study, presets[n])[lung].mean() for n in ("Lung", "Soft tissue", "Mediastinum", "Bone")]
    assert shown == sorted(shown, reverse=True)  # the lungs darken as the band moves up the brightness scale
    if study.bits_stored > 8:  # numbers in the file's own units: a 15-bit CR gets 15-bit windows
        assert presets["Lung"].width > 1000


def test_render_shapes_and_dtype_on_real_files():
    for name in ("RG1_UNCR.dcm", TWIN_MONO2):
        study = _shared(name)
        image = render(study)
        assert image.dtype == np.uint8 and image.shape == study.pixels.shape


# --- model input -----------------------------------------------------------------------------


def test_model_gray_uses_file_window_not_user_window():
    study = _shared("RG1_UNCR.dcm")
    expected = 255 - to_uint8(apply_window(study.pixels, 15000, 30000, "LINEAR"))
    assert np.array_equal(model_gray(study), expected)
    # measured: mean 192.17 of the inverted 15000/30000 rendering
    assert 191.5 < float(model_gray(study).mean()) < 192.8


def test_model_gray_percentile_window_without_presets():
    pixels = np.arange(100000, dtype=np.float32).reshape(200, 500)
    gray = model_gray(_study(pixels))
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    assert (gray[pixels <= lo] == 0).all() and (gray[pixels >= hi] == 255).all()
    assert gray[100, 250] in (127, 128)  # the median lands mid-grey


def test_model_gray_independent_of_requested_display():
    study = _shared(TWIN_MONO2)
    before = model_gray(study)
    render(study, WindowPreset("narrow", 100, 10))
    assert np.array_equal(model_gray(study), before)
