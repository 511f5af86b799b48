"""Find damaged JPEG 2000 code-block data by where each code-block's arithmetic decoder stops.

Why this exists: a changed byte inside a code-block is invisible to every structure check (lengths
and markers are intact) and to OpenJPEG itself, which decodes the rest of the block's bit-planes to
other values and shows a patch of false texture. But each code-block's coded length is written in
its packet header, and an intact block's MQ decoder finishes within a few bytes of that length;
once the decoder has gone astray, it stops hundreds of bytes early or reads far past the end.
OpenJPEG measures exactly this for streams that declare *predictable termination* (its "PTERM
check"). We decode a copy of the codestream with that flag set in its coding-style markers, which
changes nothing else in decoding, and collect OpenJPEG's warnings through its C API (ctypes, on the
library pydicom decodes with).

Intact streams never leave bytes unread (0 of 1,343 OpenJPEG-written streams in 17 lossless, lossy,
layered, tiled and rate-limited settings, nor the Kakadu-written shared files, nor pydicom's GDCM and
Kakadu files): more than 2 bytes left is damage in any stream. Reading past the end is damage only
where rate control did not cut blocks hard: a lossy encoder cuts blocks at coding passes that were
never terminated, and under 0.25 coded bits per sample (beyond 32:1 for 8-bit pictures) intact
blocks read up to 154 bytes past their end; from 0.25 bits per sample up they read at most 4 (512
OpenJPEG streams, and Kakadu's), as do the blocks of lossless streams. So reads past the end count
above 8 bytes for the lossless transfer syntax and for streams of at least 0.25 bits per sample.
Measured in benchmarks/bench_reliability.py (codecs and codec_false_alarms families) and
tests/test_reliability_codecs.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import os
import re
from pathlib import Path

from core.io.codestream import jpeg2000_codestream

_SOT, _SOD, _COD, _COC, _SIZ = 0xFF90, 0xFF93, 0xFF52, 0xFF53, 0xFF51
_PTERM, _BYPASS, _TERMALL = 0x10, 0x01, 0x04
_MAX_LEFT_BYTES = 2  # OpenJPEG already allows 2; an intact block never left more here
_MAX_SYNTHESIZED = 8  # intact blocks of lossless or >= 0.25 bit/sample streams read at most 4 bytes past
_MIN_BITS_PER_SAMPLE = 0.25  # below: rate control cuts blocks so hard that reading past the end is normal
_LEFT = re.compile(r"PTERM check failure: (\d+) remaining bytes")
_SYNTHESIZED = re.compile(r"PTERM check failure: (\d+) synthesized 0xFF")

_MESSAGE = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
_READ = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_SKIP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_SEEK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_void_p)
_DECODER_PARAMETERS_BYTES = 1 << 16  # opj_dparameters_t is ~8.3 KB; set_default fills it
_END_OF_STREAM = ctypes.c_size_t(-1).value


def check_jpeg2000_codeblocks(codestream: bytes, lossless: bool) -> str | None:
    """None for a sound stream (or one this check can't judge), else one clause saying what is wrong.

    ``lossless``: the stream is declared lossless (DICOM's JPEG 2000 Lossless syntax), so no block was
    cut short by rate control and a block that reads far past its end is damaged too.
    """
    lib = openjpeg_library()
    if lib is None:
        return None
    codestream = jpeg2000_codestream(codestream)
    if codestream is None:
        return None
    flagged = _with_termination_check(codestream)
    if flagged is None:
        return None
    messages = _decode_messages(lib, flagged)
    if messages is None:
        return None
    left = [int(m.group(1)) for m in map(_LEFT.search, messages) if m]
    synthesized = [int(m.group(1)) for m in map(_SYNTHESIZED.search, messages) if m]
    damaged = sum(n > _MAX_LEFT_BYTES for n in left)
    if lossless or _bits_per_sample(codestream) >= _MIN_BITS_PER_SAMPLE:
        damaged += sum(n > _MAX_SYNTHESIZED for n in synthesized)
    if not damaged:
        return None
    blocks = "code-block does" if damaged == 1 else "code-blocks do"
    return (f"{damaged} JPEG 2000 {blocks} not end where the coded length says "
            f"(damaged coded data: the decoded picture there is not the original)")


def _bits_per_sample(codestream: bytes) -> float:
    """Coded bits per image sample, from the SIZ marker (image area times components); 0.0 when unreadable."""
    at = codestream.find(b"\xff\x51", 2, 64)  # SIZ follows SOC
    if at < 0 or at + 40 > len(codestream):
        return 0.0
    def u32(offset: int) -> int:
        return int.from_bytes(codestream[at + offset:at + offset + 4], "big")
    samples = (u32(6) - u32(14)) * (u32(10) - u32(18)) * int.from_bytes(codestream[at + 38:at + 40], "big")
    return 8.0 * len(codestream) / samples if samples > 0 else 0.0


def _with_termination_check(codestream: bytes) -> bytes | None:
    """A copy with the predictable-termination flag set in every COD/COC; None where it can't apply.

    Selective arithmetic bypass and termination on every pass change how blocks end, so streams
    coded with either are left unjudged.
    """
    data = bytearray(codestream)
    components = 0
    at = 2
    while at + 4 <= len(data):  # main header, then each tile-part header
        marker = int.from_bytes(data[at:at + 2], "big")
        if marker == _SOT:
            if at + 10 > len(data):
                return None
            psot = int.from_bytes(data[at + 6:at + 10], "big")
            tile_part_end = at + psot if psot else len(data)
            at += 12
            while at + 4 <= len(data):
                marker = int.from_bytes(data[at:at + 2], "big")
                if marker == _SOD:
                    break
                if not _flag_segment(data, at, marker, components):
                    return None
                at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
            if not psot:
                break
            at = tile_part_end
            continue
        if marker >> 8 != 0xFF or marker in (0xFFD9,):
            break
        if marker == _SIZ and at + 40 <= len(data):
            components = int.from_bytes(data[at + 38:at + 40], "big")
        if not _flag_segment(data, at, marker, components):
            return None
        at += 2 + int.from_bytes(data[at + 2:at + 4], "big")
    return bytes(data)


def _flag_segment(data: bytearray, at: int, marker: int, components: int) -> bool:
    """Set PTERM in a COD/COC segment's code-block style byte; False where the style rules the check out."""
    if marker == _COD:
        style_at = at + 12  # marker, Lcod, Scod, progression, layers (2), MCT, levels, xcb, ycb
    elif marker == _COC:
        style_at = at + 4 + (2 if components >= 257 else 1) + 4  # Ccoc, Scoc, levels, xcb, ycb
    else:
        return True
    if style_at >= len(data):
        return False
    if data[style_at] & (_BYPASS | _TERMALL):
        return False
    data[style_at] |= _PTERM
    return True


def _decode_messages(lib, codestream: bytes) -> list[str] | None:
    """OpenJPEG's warnings while decoding ``codestream`` from memory; None if it does not decode."""
    messages: list[str] = []
    buffer = ctypes.create_string_buffer(codestream, len(codestream))
    position = [0]

    @_READ
    def read(destination, size, _user):
        left = len(codestream) - position[0]
        if left <= 0:
            return _END_OF_STREAM
        count = min(size, left)
        ctypes.memmove(destination, ctypes.addressof(buffer) + position[0], count)
        position[0] += count
        return count

    @_SKIP
    def skip(count, _user):
        position[0] += count
        return count

    @_SEEK
    def seek(offset, _user):
        position[0] = offset
        return 1

    @_MESSAGE
    def keep(text, _user):
        messages.append(text.decode("ascii", "replace"))

    @_MESSAGE
    def ignore(_text, _user):
        return None

    codec = lib.opj_create_decompress(0)  # OPJ_CODEC_J2K: a bare codestream
    if not codec:
        return None
    stream = image = None
    try:
        lib.opj_set_warning_handler(codec, keep, None)
        lib.opj_set_error_handler(codec, ignore, None)
        lib.opj_set_info_handler(codec, ignore, None)
        parameters = ctypes.create_string_buffer(_DECODER_PARAMETERS_BYTES)
        lib.opj_set_default_decoder_parameters(parameters)
        if not lib.opj_setup_decoder(codec, parameters):
            return None
        lib.opj_codec_set_threads(codec, max(1, min(4, os.cpu_count() or 1)))
        stream = lib.opj_stream_create(1 << 20, 1)
        lib.opj_stream_set_read_function(stream, read)
        lib.opj_stream_set_skip_function(stream, skip)
        lib.opj_stream_set_seek_function(stream, seek)
        lib.opj_stream_set_user_data_length(stream, len(codestream))
        image = ctypes.c_void_p()
        if not lib.opj_read_header(stream, codec, ctypes.byref(image)):
            return None
        if not (lib.opj_decode(codec, stream, image) and lib.opj_end_decompress(codec, stream)):
            return None
        return messages
    finally:
        if image:
            lib.opj_image_destroy(image)
        if stream:
            lib.opj_stream_destroy(stream)
        lib.opj_destroy_codec(codec)


@functools.lru_cache(maxsize=1)
def openjpeg_library():
    """OpenJPEG's C library: the copy inside pylibjpeg-openjpeg (pydicom's decoder), else Pillow's,
    else the system's; None where none is found (the check is then skipped)."""
    for path in _library_candidates():
        try:
            lib = ctypes.CDLL(str(path))
            lib.opj_decode  # noqa: B018 - an extension module without OpenJPEG's symbols raises here
        except (OSError, AttributeError):
            continue
        _declare(lib)
        return lib
    return None


def _library_candidates() -> list[str]:
    candidates = []
    try:
        import _openjpeg  # pylibjpeg-openjpeg's extension, with OpenJPEG linked in

        candidates.append(_openjpeg.__file__)
    except ImportError:
        pass
    try:
        import PIL

        pil = Path(PIL.__file__).parent
        for pattern in ("../pillow.libs/libopenjp2*", ".dylibs/libopenjp2*", "openjp2*.dll"):
            candidates.extend(sorted(glob.glob(str(pil / pattern))))
    except ImportError:
        pass
    system = ctypes.util.find_library("openjp2")
    if system:
        candidates.append(system)
    return candidates


def _declare(lib) -> None:
    pointer, size = ctypes.c_void_p, ctypes.c_size_t
    lib.opj_create_decompress.restype = pointer
    lib.opj_create_decompress.argtypes = [ctypes.c_int]
    for name in ("opj_set_warning_handler", "opj_set_error_handler", "opj_set_info_handler"):
        getattr(lib, name).argtypes = [pointer, pointer, pointer]
    lib.opj_set_default_decoder_parameters.argtypes = [pointer]
    lib.opj_setup_decoder.argtypes = [pointer, pointer]
    lib.opj_codec_set_threads.argtypes = [pointer, ctypes.c_int]
    lib.opj_stream_create.restype = pointer
    lib.opj_stream_create.argtypes = [size, ctypes.c_int]
    for name in ("opj_stream_set_read_function", "opj_stream_set_skip_function", "opj_stream_set_seek_function"):
        getattr(lib, name).argtypes = [pointer, pointer]
    lib.opj_stream_set_user_data_length.argtypes = [pointer, ctypes.c_uint64]
    lib.opj_read_header.argtypes = [pointer, pointer, ctypes.POINTER(pointer)]
    lib.opj_decode.argtypes = [pointer, pointer, pointer]
    lib.opj_end_decompress.argtypes = [pointer, pointer]
    lib.opj_image_destroy.argtypes = [pointer]
    lib.opj_stream_destroy.argtypes = [pointer]
    lib.opj_destroy_codec.argtypes = [pointer]
