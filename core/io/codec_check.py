"""Decode compressed pixel data so that a damaged stream is refused, never shown scrambled.

Why this exists: pydicom tries its decoding plugins in turn and returns the first result. When
the reference decoder (libjpeg, OpenJPEG, CharLS) stops on damaged entropy-coded data, a more
tolerant fallback (Pillow) often "succeeds" and returns a picture in which most pixels are wrong;
a radiologist must never read that as an X-ray. So:

- the plugins are tried one at a time, in pydicom's order; when one reports an error and a later
  one succeeds, the data is damaged: the study is refused with both facts in the message;
- 8-bit JPEG (baseline / extended) is also run through libjpeg-turbo in strict mode
  (``simplejpeg``), which reports the corrupt-data *warnings* ("premature end of data segment",
  "extraneous bytes before marker") that the other decoders pass over silently;
- lossless JPEG, JPEG 2000 and RLE streams are checked against their own structure
  (core/io/codestream.py: tile-part lengths and end markers, a Huffman walk that must end on the
  last byte, RLE segments that must decode to exactly one plane);
- JPEG 2000 code-blocks must end where their coded length says (core/io/jpeg2000_termination.py:
  OpenJPEG's termination check, which catches a changed byte inside a block's arithmetic-coded data),
  and a run of zero bytes must not be longer than the stream has packets (core/io/jpeg2000_zero_run.py:
  zeroed data, read as empty packets);
- grey JPEG must not step in brightness along the 8x8 block grid from one block onwards
  (core/io/jpeg_dc_shift.py: a damaged DC coefficient after the Huffman decoder fell back in step),
  nor continue sideways by whole blocks below one block boundary (core/io/jpeg_block_shift.py:
  blocks lost or gained before the decoder fell back in step);
- grey lossless JPEG (first-order predictor) must not hold a row offset from one column to its end
  (core/io/lossless_row_shift.py: a damaged difference, the same fall back in step).

Limit (measured in benchmarks/bench_reliability.py, codec family): entropy-coded data carry no
checksum, so some damage decodes cleanly in every decoder (a Huffman code that resynchronises, an
RLE literal byte that changed). Such an image cannot be told from an intact one by any decoder; the
benchmark counts these cases instead of hiding them.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    RLELossless,
)

try:  # libjpeg-turbo with a strict mode; the check is skipped where the wheel is missing
    import simplejpeg
except ImportError:  # pragma: no cover - a dependency in pyproject.toml
    simplejpeg = None

from core.io.codestream import check_jpeg2000, check_jpeg_lossless, check_rle
from core.io.jpeg2000_termination import check_jpeg2000_codeblocks
from core.io.jpeg2000_zero_run import check_jpeg2000_zero_run
from core.io.jpeg_block_shift import check_jpeg_block_shift
from core.io.jpeg_dc_shift import check_jpeg_dc_shift
from core.io.lossless_row_shift import check_lossless_row_shift
from core.io.redact import library_reason

_STRICT_JPEG_SYNTAXES = (JPEGBaseline8Bit, JPEGExtended12Bit)


class DamagedPixelData(Exception):
    """The compressed pixel data are damaged; ``str()`` says how it was found (one clause)."""


def decode_checked(ds: Dataset, syntax, decoder) -> np.ndarray:
    """The decoded frame; DamagedPixelData when a decoder reports damage; RuntimeError when none can.

    ``decoder`` is pydicom's decoder for ``syntax``. Uncompressed syntaxes go straight through.
    """
    plugins = _plugins_in_order(decoder)
    if not syntax.is_compressed or len(plugins) == 1:
        arr = _as_array(decoder, ds, plugins[0])
    else:
        failures: list[str] = []
        arr = None
        for name in plugins:
            try:
                arr = _as_array(decoder, ds, name)
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - decoder plugins raise anything on bad data
                failures.append(f"{name}: {_plugin_reason(exc, name)}")
                continue
            if failures:
                stopped, reason = failures[0].split(": ", 1)
                raise DamagedPixelData(
                    f"the {stopped} decoder stopped on damaged data ({reason}); "
                    f"the '{name}' decoder would show a scrambled picture"
                )
            break
        if arr is None:
            raise RuntimeError("; ".join(failures))
    if syntax.is_compressed:
        frame = _first_frame(ds)
        if frame is not None:  # None: the framing was already accepted by the decoder above
            _strict_jpeg(ds, syntax, frame)
            _structure(ds, syntax, frame)
            _jpeg_block_grid(ds, syntax, frame, arr)
            _lossless_rows(ds, syntax, frame, arr)
    return arr


def _first_frame(ds: Dataset) -> bytes | None:
    """The first frame's compressed bytes, once, for every check below."""
    try:
        return next(generate_frames(ds.PixelData, number_of_frames=1))
    except (StopIteration, ValueError, KeyError, IndexError, TypeError):
        return None


def _structure(ds: Dataset, syntax, frame: bytes) -> None:
    """The codestream's own redundancy: lengths, end markers, valid codes (core/io/codestream.py)."""
    if syntax not in (JPEG2000, JPEG2000Lossless, JPEGLossless, JPEGLosslessSV1, RLELossless):
        return
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if syntax in (JPEG2000, JPEG2000Lossless):
        problem = (check_jpeg2000(frame) or check_jpeg2000_zero_run(frame)
                   or check_jpeg2000_codeblocks(frame, lossless=syntax == JPEG2000Lossless))
    elif syntax == RLELossless:
        problem = check_rle(frame, rows, columns, samples * ((int(ds.get("BitsAllocated", 8) or 8) + 7) // 8))
    else:
        problem = check_jpeg_lossless(frame, rows * columns * samples) if samples == 1 else None
    if problem:
        raise DamagedPixelData(problem)


def _jpeg_block_grid(ds: Dataset, syntax, frame: bytes, arr: np.ndarray) -> None:
    """Grey JPEG: a picture displaced sideways by whole blocks (core/io/jpeg_block_shift.py), or, without
    restart intervals, a brightness staircase on the block grid (core/io/jpeg_dc_shift.py).

    Restart intervals reset the DC prediction, so there a damaged coefficient shifts only one
    interval: a different picture, not judged by the staircase.
    """
    if syntax not in _STRICT_JPEG_SYNTAXES or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return
    picture = arr[0] if arr.ndim == 3 else arr
    problem = check_jpeg_block_shift(picture)
    scan = frame.find(b"\xff\xda")
    if not problem and scan >= 0 and b"\xff\xdd" not in frame[:scan]:
        problem = check_jpeg_dc_shift(picture)
    if problem:
        raise DamagedPixelData(problem)


def _lossless_rows(ds: Dataset, syntax, frame: bytes, arr: np.ndarray) -> None:
    """A row offset from one column to its end (core/io/lossless_row_shift.py), for grey lossless JPEG
    with the first-order predictor, the only one whose errors run along a row."""
    if syntax not in (JPEGLossless, JPEGLosslessSV1) or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return
    if syntax == JPEGLossless:
        scan = frame.find(b"\xff\xda")
        if scan < 0 or scan + 5 > len(frame):
            return
        predictor_at = scan + 5 + 2 * frame[scan + 4]  # marker, length, component count, component specs
        if predictor_at >= len(frame) or frame[predictor_at] != 1:
            return
    problem = check_lossless_row_shift(arr[0] if arr.ndim == 3 else arr)
    if problem:
        raise DamagedPixelData(problem)


def _plugin_reason(exc: BaseException, plugin: str) -> str:
    """The plugin's own words, without pydicom's "Unable to decode ... plugins: NAME:" wrapper."""
    text = " ".join(str(exc).split())
    marker = f"{plugin}: "
    if "all available plugins" in text and marker in text:
        text = text.split(marker, 1)[1]
    return library_reason(Exception(text) if text else exc, 160)


def _plugins_in_order(decoder) -> list[str]:
    """pydicom's own order of preference (``available_plugins`` is sorted by name, not by priority)."""
    ordered = list(getattr(decoder, "_available", {}) or ())
    return ordered or list(decoder.available_plugins) or [""]


def _as_array(decoder, ds: Dataset, plugin: str) -> np.ndarray:
    arr, _meta = decoder.as_array(ds, decoding_plugin=plugin)
    return arr


def _strict_jpeg(ds: Dataset, syntax, frame: bytes) -> None:
    """libjpeg-turbo's corrupt-data warnings, as errors, for 8-bit JPEG streams."""
    if simplejpeg is None or syntax not in _STRICT_JPEG_SYNTAXES:
        return
    if int(ds.get("BitsAllocated", 8) or 8) != 8:
        return
    colour = int(ds.get("SamplesPerPixel", 1) or 1) != 1
    try:
        simplejpeg.decode_jpeg(frame, colorspace="RGB" if colour else "GRAY", strict=True)
    except ValueError as exc:
        raise DamagedPixelData(
            f"the JPEG data stream is corrupt (libjpeg-turbo: {library_reason(exc, 120)})"
        ) from None
