"""Damaged compressed pixel data: refused with a plain message, never shown scrambled, no traceback.

Real shared DICOMs whose compressed stream is damaged here (tests/codec_mutation.py), the real
decoders, the real CLI in a subprocess (stderr read whole, so library loggers would show).
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import get_decoder

from core.io import load_study
from core.io.errors import StudyReadError
from tests.codec_mutation import (
    block_shifted_jpeg,
    dc_shifted_jpeg,
    row_shifted_lossless,
    run_codec_fuzz,
    silently_decoded,
    zeroed_jpeg2000,
)
from tests.shared_data import TWIN_MONO2, shared_file

REPO = Path(__file__).resolve().parents[1]


def _damaged_jpeg(tmp_path: Path, want: str) -> Path:
    """The shared JPEG-baseline chest with bytes changed in its entropy-coded data, chosen so that
    ``want`` holds: "fallback" (libjpeg fails, Pillow decodes) or "silent" (every pydicom plugin
    decodes, libjpeg-turbo reports corrupt data)."""
    source = shared_file("dicom", TWIN_MONO2)
    ds = pydicom.dcmread(source)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)
    rng = random.Random(29)
    logging.getLogger("pydicom").setLevel(logging.CRITICAL + 10)
    try:
        for _ in range(400):
            data = bytearray(frame)
            for _ in range(rng.choice((1, 2, 4))):
                data[rng.randrange(len(data) // 10, len(data))] ^= 1 << rng.randrange(8)
            ds.PixelData = encapsulate([bytes(data)])
            outcome = []
            for plugin in ("pylibjpeg", "pillow"):
                try:
                    decoder.as_array(ds, decoding_plugin=plugin)
                    outcome.append(True)
                except Exception:  # noqa: BLE001 - probing which plugin fails
                    outcome.append(False)
            if (want == "fallback" and outcome == [False, True]) or (want == "silent" and outcome == [True, True]):
                path = tmp_path / f"damaged-{want}.dcm"
                ds.save_as(path)
                if want == "silent":
                    import simplejpeg

                    try:
                        simplejpeg.decode_jpeg(bytes(data), colorspace="GRAY", strict=True)
                    except ValueError:  # libjpeg-turbo's corrupt-data warning: the case wanted
                        return path
                    continue
                return path
    finally:
        logging.getLogger("pydicom").setLevel(logging.NOTSET)
    pytest.skip(f"no '{want}' mutation found in 400 tries")


def test_a_fallback_decoder_result_is_refused_not_shown(tmp_path):
    path = _damaged_jpeg(tmp_path, "fallback")
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    message = str(info.value)
    assert "pixel data damaged" in message and path.name in message and "\n" not in message
    assert "pylibjpeg" in message and "pillow" in message  # which decoder stopped, which would have shown it


def test_libjpeg_turbo_corrupt_data_warnings_refuse_the_image(tmp_path):
    path = _damaged_jpeg(tmp_path, "silent")  # every pydicom plugin decodes this one without a word
    with pytest.raises(StudyReadError, match="pixel data damaged: the JPEG data stream is corrupt"):
        load_study(path)


def test_intact_compressed_files_still_open_identically():
    for name in (TWIN_MONO2, "RG1_J2KR.dcm", "RG1_J2KI.dcm"):
        path = shared_file("dicom", name)
        study = load_study(path)
        reference = pydicom.dcmread(path).pixel_array
        assert study.pixels.shape == reference.shape
        assert not any("damaged" in warning for warning in study.warnings)


def test_no_library_traceback_reaches_the_log_or_stderr(tmp_path, caplog):
    path = _damaged_jpeg(tmp_path, "fallback")
    caplog.clear()  # the probing above logs through pydicom's own loggers
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StudyReadError):
        load_study(path)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, "-m", "core.cli", "segment", str(path), "--out", str(tmp_path / "out")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and "ERROR" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "pixel data damaged" in errors[0], run.stderr
    assert not list((tmp_path / "out").glob("*.png"))  # no mask written for a scrambled image


def test_codec_mutation_fuzz_small(tmp_path):
    """48 mutations of the 8 compressed files: no traceback, crash, hang or unexplained exception."""
    try:
        report = run_codec_fuzz(48, tmp_path, seed=0, workers=2)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    summary = report.to_json()
    assert summary["cases"] == 48
    assert summary["crashed"] == summary["hung"] == summary["error"] == summary["bad_message"] == 0, report.failures
    assert summary["tracebacks_on_stderr"] == 0 and summary["log_records_with_errors"] == 0, report.failures
    assert not report.failures, report.failures
    assert summary["refused"] >= 20  # the damage is caught, not shown
    for operator in ("truncate", "delete", "duplicate"):  # a stream that changed length is never shown
        assert summary["by_operator"].get(operator, {}).get("changed_silently", 0) == 0, summary["by_operator"]
    assert any(kind.startswith("pixel data damaged") for kind in summary["refusal_kinds"])


# --- damage every decoder passes over: caught by the stream's own structure (core/io/codestream.py) ---


@pytest.mark.parametrize("source_name, operator, found", [
    ("JPEG-LL", "flip", "lossless JPEG data"),  # Huffman codes that resynchronise, ending off the last byte
    ("JPEG-LL", "delete", "lossless JPEG data"),
    ("OBXXXX1A_rle", "delete", "RLE segment"),  # a segment that no longer decodes to one plane
    ("RG1_J2KR", "flip", "code-block"),  # arithmetic-coded data that decode to other values
    ("RG3_J2KI", "bytes", "code-block"),
    ("MR2_J2KI", "zeros", "zero bytes"),  # a zeroed run: longer than the stream has packets
])
def test_damage_that_every_decoder_accepts_is_refused_by_the_stream_structure(tmp_path, source_name, operator, found):
    path = silently_decoded(tmp_path, source_name, operator, seed=29)
    if path is None:
        pytest.skip(f"shared DICOMs not found, or no silent '{operator}' mutation of {source_name}")
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    message = str(info.value)
    assert "pixel data damaged" in message and found in message and path.name in message and "\n" not in message


def test_every_intact_compressed_shared_file_passes_the_structure_checks(tmp_path):
    from tests.codec_mutation import codec_sources

    sources = codec_sources(tmp_path)
    if not sources:
        pytest.skip("shared DICOMs not found")
    for source in sources:
        study = load_study(source.path)
        np.testing.assert_array_equal(study.pixels.shape[:2], pydicom.dcmread(source.path).pixel_array.shape[:2])
        assert not any("damaged" in warning for warning in study.warnings), source.name


def test_jpeg2000_structure_check_on_the_real_codestream():
    """OpenJPEG already refuses these on the shared files; the check is the same guard for laxer decoders."""
    from core.io.codestream import check_jpeg2000

    frame = next(generate_frames(pydicom.dcmread(shared_file("dicom", "RG1_J2KI.dcm")).PixelData, number_of_frames=1))
    assert check_jpeg2000(frame) is None
    middle = len(frame) // 2
    assert "codestream ends 40 bytes early" in check_jpeg2000(frame[:middle] + frame[middle + 40:])
    grown = frame[:middle] + frame[middle:middle + 40] + frame[middle:]
    assert "does not end where its header says" in check_jpeg2000(grown)
    assert "codestream ends 200 bytes early" in check_jpeg2000(frame[: len(frame) - 200])
    coded = bytearray(frame)
    at = next(i for i in range(middle, len(coded) - 1) if coded[i] == 0xFF)
    coded[at + 1] = 0xA0  # a marker code inside coded data
    assert "false marker" in check_jpeg2000(bytes(coded))


def test_intact_compressed_files_of_other_writers_pass_the_structure_checks():
    """pydicom's own compressed test files (GDCM, DCMTK, Kakadu writers; JP2-wrapped JPEG 2000; RGB and
    16/32-bit RLE; multi-frame): no false alarm."""
    from pydicom.data import get_testdata_file
    from pydicom.uid import JPEG2000, JPEG2000Lossless, JPEGLosslessSV1, RLELossless

    from core.io.codestream import check_jpeg2000, check_jpeg_lossless, check_rle

    checked = 0
    for name in ("693_J2KI.dcm", "GDCMJ2K_TextGBR.dcm", "JPEG2000.dcm", "MR_small_jp2klossless.dcm",
                 "SC_rgb_gdcm_KY.dcm", "examples_jpeg2k.dcm", "MR_small_RLE.dcm", "SC_rgb_rle.dcm",
                 "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit_2frame.dcm", "rtdose_rle.dcm", "JPEG-LL.dcm"):
        path = get_testdata_file(name, download=False)
        if path is None:
            continue
        ds = pydicom.dcmread(path)
        syntax = ds.file_meta.TransferSyntaxUID
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        for frame in generate_frames(ds.PixelData, number_of_frames=frames):
            if syntax in (JPEG2000, JPEG2000Lossless):
                problem = check_jpeg2000(frame)
            elif syntax == RLELossless:
                problem = check_rle(frame, ds.Rows, ds.Columns, ds.SamplesPerPixel * ds.BitsAllocated // 8)
            else:
                assert syntax == JPEGLosslessSV1
                problem = check_jpeg_lossless(frame, ds.Rows * ds.Columns)
            assert problem is None, f"{name}: {problem}"
            checked += 1
    assert checked >= 10


# --- JPEG 2000 code-blocks that do not end where their coded length says (core/io/jpeg2000_termination.py) ---


def test_intact_jpeg2000_of_other_writers_and_settings_passes_the_code_block_and_zero_run_checks(tmp_path):
    """No false alarm: the shared Kakadu files, pydicom's GDCM / Kakadu / JP2-wrapped test files, and
    OpenJPEG's own encoder on real chest X-rays with lossless, lossy, layered, tiled, precinct and
    32x32 code-block settings, 8- and 16-bit."""
    import io

    from PIL import Image
    from pydicom.data import get_testdata_file
    from pydicom.uid import JPEG2000Lossless

    from core.io.jpeg2000_termination import check_jpeg2000_codeblocks, openjpeg_library
    from core.io.jpeg2000_zero_run import check_jpeg2000_zero_run

    assert openjpeg_library() is not None, "pylibjpeg-openjpeg's OpenJPEG should be found"
    streams = []  # (what, codestream, declared lossless)
    for path in [shared_file("dicom", name) for name in ("RG1_J2KR.dcm", "RG1_J2KI.dcm", "RG3_J2KI.dcm", "MR2_J2KI.dcm")] + [
            get_testdata_file(name, download=False) for name in (
                "693_J2KI.dcm", "GDCMJ2K_TextGBR.dcm", "MR_small_jp2klossless.dcm", "examples_jpeg2k.dcm",
                "J2K_pixelrep_mismatch.dcm")]:
        if path is not None:
            ds = pydicom.dcmread(path)
            streams.append((Path(path).name, next(generate_frames(ds.PixelData, number_of_frames=1)),
                            ds.file_meta.TransferSyntaxUID == JPEG2000Lossless))
    chest = np.asarray(Image.open(shared_file("cxr-lungs", "images")
                                  .joinpath(sorted(os.listdir(shared_file("cxr-lungs", "images")))[0])).convert("L"))
    settings = [(dict(irreversible=False), True), (dict(codeblock_size=(32, 32), num_resolutions=4), True),
                (dict(precinct_size=(128, 128), progression="RPCL"), True),
                (dict(irreversible=True, quality_mode="rates", quality_layers=[80, 20, 5]), False),
                (dict(irreversible=True, tile_size=(256, 256), quality_mode="dB", quality_layers=[38]), False),
                (dict(irreversible=False, quality_mode="dB", quality_layers=[35]), False)]  # blocks cut short
    for picture in (Image.fromarray(chest), Image.fromarray(chest.astype(np.uint16) * 16 + 7)):
        for options, lossless in settings:
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG2000", no_jp2=True, **options)
            streams.append((f"openjpeg {picture.mode} {options}", buffer.getvalue(), lossless))
    for name, stream, lossless in streams:
        assert check_jpeg2000_codeblocks(stream, lossless=lossless) is None, name
        assert check_jpeg2000_zero_run(stream) is None, name  # GDCMJ2K_TextGBR holds 18 zeros, 108 packets
    assert len(streams) >= 16


@pytest.mark.parametrize("name", ["MR2_J2KI.dcm", "RG1_J2KI.dcm", "RG3_J2KI.dcm"])
def test_zeroed_jpeg2000_packet_headers_are_refused(tmp_path, name):
    """256 bytes zeroed from the first packet header on (a zeroed disk block): OpenJPEG reads them as empty
    packets and decodes the rest, so pydicom shows another (blurred) picture without an error, and the
    code-block check has no block to judge. Loaded without a word before jpeg2000_zero_run.py."""
    source = shared_file("dicom", name)
    path = zeroed_jpeg2000(tmp_path, name)
    decoded = pydicom.dcmread(path).pixel_array  # every decoder accepts it ...
    assert not np.array_equal(decoded, pydicom.dcmread(source).pixel_array)  # ... as another picture
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    assert "pixel data damaged: a run of 256 zero bytes inside the JPEG 2000 coded data" in str(info.value)
    assert "at most 6 packets per tile" in str(info.value)


def test_code_block_check_leaves_streams_it_cannot_judge_alone():
    """Arithmetic bypass changes how blocks end: such a stream is not judged, whatever its bytes."""
    from core.io.jpeg2000_termination import _with_termination_check, check_jpeg2000_codeblocks

    frame = bytearray(next(generate_frames(pydicom.dcmread(shared_file("dicom", "RG3_J2KI.dcm")).PixelData,
                                           number_of_frames=1)))
    cod = frame.find(b"\xff\x52")
    assert _with_termination_check(bytes(frame))[cod + 12] & 0x10  # PTERM set in the copy only
    assert not frame[cod + 12] & 0x10
    frame[cod + 12] |= 0x01  # selective arithmetic-coding bypass
    assert _with_termination_check(bytes(frame)) is None
    assert check_jpeg2000_codeblocks(bytes(frame), lossless=True) is None
    assert check_jpeg2000_codeblocks(b"not a codestream", lossless=True) is None


# --- JPEG pictures that step in brightness along the block grid (core/io/jpeg_dc_shift.py) ---


@pytest.mark.parametrize("find, found", [
    (dc_shifted_jpeg, "8x8 block grid"),  # JPEG: the rest of the picture shifted by a damaged DC difference
    (partial(dc_shifted_jpeg, near_side_edge=True), "8x8 block grid"),  # ... from a block near a side edge
    (block_shifted_jpeg, "to the side of the picture above"),  # JPEG: blocks lost, the rest drawn out of place
    (row_shifted_lossless, "lossless-JPEG difference"),  # lossless JPEG: one row offset to its end
])
def test_damage_every_decoder_and_the_stream_checks_accept_is_refused_by_a_picture_check(tmp_path, find, found):
    path = find(tmp_path)
    if path is None:
        pytest.skip("shared DICOMs not found, or no such mutation")
    with pytest.raises(StudyReadError) as info:
        load_study(path)
    message = str(info.value)
    assert "pixel data damaged" in message and found in message and path.name in message


def _chest_jpeg(index: int = 3, quality: int = 90) -> np.ndarray:
    """A real chest X-ray at 1024 x 1024, as a JPEG decoder returns it (int16, so tests can shift it)."""
    import io

    from PIL import Image

    folder = shared_file("cxr-lungs", "images")
    picture = np.asarray(Image.open(folder / sorted(os.listdir(folder))[index]).convert("L").resize((1024, 1024)))
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer)).astype(np.int16)


def test_block_grid_staircase_found_where_it_is_and_straight_edges_left_alone():
    """A real chest X-ray, JPEG-encoded: a staircase shift added from block (40, 50) is found there, and one
    from block (60, 3), next to the left edge, too; a full-width step on a block boundary (padding,
    collimation) and the untouched picture are not flagged."""
    from core.io.jpeg_dc_shift import check_jpeg_dc_shift

    decoded = _chest_jpeg()
    assert check_jpeg_dc_shift(decoded) is None
    shifted = decoded.copy()
    shifted[40 * 8:40 * 8 + 8, 50 * 8:] += 12
    shifted[41 * 8:] += 12
    message = check_jpeg_dc_shift(np.clip(shifted, 0, 255))
    assert message and "brighter by about 1" in message and "block row 41, column 51" in message
    near_edge = decoded.copy()
    near_edge[60 * 8:60 * 8 + 8, 3 * 8:] -= 20
    near_edge[61 * 8:] -= 20
    message = check_jpeg_dc_shift(np.clip(near_edge, 0, 255))
    assert message and "darker by about" in message and "block row 61, column 4" in message
    edge = decoded.copy()
    edge[600:] += 40  # a straight full-width step on the block boundary at row 600
    assert check_jpeg_dc_shift(np.clip(edge, 0, 255)) is None


def test_block_displacement_found_where_it_starts_and_not_in_the_intact_picture():
    """A real chest X-ray, JPEG-encoded, drawn as after one lost block at (50, 20): everything from there on
    one block to the left, the last block of each row taken from the row below."""
    from core.io.jpeg_block_shift import check_jpeg_block_shift

    decoded = _chest_jpeg(index=5)
    assert check_jpeg_block_shift(decoded) is None
    blocks = decoded.reshape(128, 8, 128, 8).transpose(0, 2, 1, 3).reshape(128 * 128, 8, 8)
    lost = 50 * 128 + 20
    damaged = np.concatenate([blocks[:lost], blocks[lost + 1:], blocks[-1:]])
    picture = damaged.reshape(128, 128, 8, 8).transpose(0, 2, 1, 3).reshape(1024, 1024)
    message = check_jpeg_block_shift(picture)
    assert message and "continues 8 pixels to the side" in message
    assert "below row 400" in message or "below row 408" in message  # block row 50, or the full row under it
    # 12-bit pictures (JPEG extended) are judged alike; pictures too small to vote, and flat ones, are not
    assert check_jpeg_block_shift(decoded * 16) is None
    assert "continues 8 pixels" in (check_jpeg_block_shift(picture * 16) or "")
    assert check_jpeg_block_shift(picture[:, :400]) is None
    assert check_jpeg_block_shift(np.full((1024, 1024), 100, np.int16)) is None
    assert check_jpeg_block_shift(np.stack([picture, picture])) is None


def test_no_block_grid_alarm_on_real_chest_xrays_at_any_jpeg_quality():
    import io

    from PIL import Image

    from core.io.jpeg_block_shift import check_jpeg_block_shift
    from core.io.jpeg_dc_shift import check_jpeg_dc_shift

    checked = 0
    for collection, count in (("cxr-lungs", 12), ("peds-lungs", 12), ("shenzhen", 6), ("clinic-sample", 6)):
        folder = shared_file(collection, "images")
        for name in sorted(os.listdir(folder))[:count]:
            picture = Image.open(folder / name).convert("L")
            for quality in (50, 75, 95):
                buffer = io.BytesIO()
                picture.save(buffer, "JPEG", quality=quality)
                decoded = np.asarray(Image.open(buffer))
                assert check_jpeg_dc_shift(decoded) is None, (name, quality)
                assert check_jpeg_block_shift(decoded) is None, (name, quality)
                checked += 1
    assert checked == 108


# --- lossless JPEG with one row offset from a column to its end (core/io/lossless_row_shift.py) ---


def test_row_streak_found_where_it_is_and_whole_bad_lines_left_alone():
    """A real chest X-ray (12-bit range): a row offset from column 300 to its end is found there; a whole
    bad detector line, a short stretch at the right border, and the untouched picture are not flagged."""
    from PIL import Image

    from core.io.lossless_row_shift import check_lossless_row_shift

    folder = shared_file("cxr-lungs", "images")
    picture = np.asarray(Image.open(folder / sorted(os.listdir(folder))[5]).convert("L")).astype(np.int32) * 16
    assert check_lossless_row_shift(picture) is None
    streak = picture.copy()
    streak[400, 300:] += 200
    message = check_lossless_row_shift(streak)
    assert message and "row 401" in message and "column 301" in message
    bad_line = picture.copy()
    bad_line[400, :] += 200
    assert check_lossless_row_shift(bad_line) is None
    short = picture.copy()
    short[400, -40:] += 200
    assert check_lossless_row_shift(short) is None


def test_no_row_streak_alarm_on_real_chest_xrays():
    from PIL import Image

    from core.io.lossless_row_shift import check_lossless_row_shift

    checked = 0
    for collection, count in (("cxr-lungs", 12), ("peds-lungs", 12), ("shenzhen", 6), ("clinic-sample", 6)):
        folder = shared_file(collection, "images")
        for name in sorted(os.listdir(folder))[:count]:
            picture = np.asarray(Image.open(folder / name).convert("L"))
            for scaled in (picture, picture.astype(np.uint16) * 16):
                assert check_lossless_row_shift(scaled) is None, name
                checked += 1
    assert checked == 72
