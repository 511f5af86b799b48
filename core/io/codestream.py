"""Structural checks of compressed pixel streams, for damage that every decoder passes over.

Why this exists: entropy-coded data carry no checksum, and the installed decoders are tolerant:
libjpeg (pylibjpeg) decodes a lossless JPEG that ends early or late without a word, OpenJPEG
decodes a JPEG 2000 tile whose length no longer matches its header, the RLE decoder fills or cuts
a segment that decodes to the wrong length. Each format still has redundancy a strict reader can
check: the stream must end exactly where its header says, every Huffman code must be valid and
the last one must end on the last byte, no false marker may appear inside coded data, an RLE
segment must decode to exactly one plane. Each check returns None for a sound stream, else one
clause saying what is wrong; it never decodes pixels, and is vectorised (numpy) so a 10 Mpx
image costs well under a second.
"""

from __future__ import annotations

from array import array

import numpy as np

# --- JPEG 2000 (ISO 15444-1 annex A) ------------------------------------------------------------

_SOC, _SOT, _SOD, _EOC = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9
_SOP, _EPH = 0xFF91, 0xFF92


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def _trailing_ok(data: bytes, end: int) -> bool:
    """Only DICOM's even-length padding (one 0x00 or 0xFF byte) may follow the end marker."""
    rest = data[end:]
    return len(rest) <= 1 and all(b in (0x00, 0xFF) for b in rest)


def check_jpeg2000(data: bytes) -> str | None:
    """Tile-part lengths, the end-of-codestream marker and the marker-free coded data."""
    if len(data) >= 4 and _u16(data, 0) != _SOC:
        data = jp2_codestream(data)  # some writers (GDCM) wrap the codestream in a JP2 file
        if data is None:
            return None  # neither form: the decoder accepted it, nothing to check it against
    if len(data) < 4 or _u16(data, 0) != _SOC:
        return "the JPEG 2000 codestream does not start with its SOC marker"
    at = 2
    sop_eph = False
    while True:  # main header: marker segments up to the first tile-part
        if at + 4 > len(data):
            return "the JPEG 2000 main header is cut short"
        marker = _u16(data, at)
        if marker == _SOT:
            break
        if marker >> 8 != 0xFF:
            return f"the JPEG 2000 main header is damaged at byte {at}"
        length = _u16(data, at + 2)
        if length < 2:
            return f"the JPEG 2000 main header has a marker segment of length {length}"
        if marker == 0xFF52 and at + 4 < len(data):  # COD: Scod says whether SOP/EPH markers are used
            sop_eph = bool(data[at + 4] & 0x06)
        at += 2 + length
    tile_parts = 0
    while True:
        marker = _u16(data, at) if at + 2 <= len(data) else None
        if marker == _EOC:
            if not _trailing_ok(data, at + 2):
                return f"the JPEG 2000 codestream has {len(data) - at - 2} bytes after its end marker"
            break
        if at + 12 > len(data):
            return "the JPEG 2000 codestream is cut short (no end-of-codestream marker)"
        if marker != _SOT or _u16(data, at + 2) != 10:
            return f"the JPEG 2000 tile-part at byte {at} does not start with a valid SOT marker"
        psot = int.from_bytes(data[at + 6:at + 10], "big")
        start = at
        end = at + psot if psot else len(data) - 2 - (0 if _u16(data, len(data) - 2) == _EOC else 1)
        if psot and psot < 14:
            return f"the JPEG 2000 tile-part at byte {at} claims {psot} bytes"
        if end + 2 > len(data):
            return (f"the JPEG 2000 tile-part at byte {at} claims {psot} bytes but the codestream ends "
                    f"{end + 2 - len(data)} bytes early")
        following = _u16(data, end)
        if following not in (_SOT, _EOC):
            return (f"the JPEG 2000 tile-part at byte {at} does not end where its header says "
                    "(bytes were added, removed or changed)")
        # tile-part header markers up to SOD, then coded data that must hold no marker
        at += 12
        while at + 2 <= end and _u16(data, at) != _SOD:
            if data[at] != 0xFF or at + 4 > end:
                return f"the JPEG 2000 tile-part header at byte {at} is damaged"
            at += 2 + _u16(data, at + 2)
        if at + 2 > end:
            return f"the JPEG 2000 tile-part at byte {start} has no start-of-data marker"
        problem = _false_marker(data, at + 2, end, sop_eph)
        if problem:
            return problem
        at = end
        tile_parts += 1
    if not tile_parts:
        return "the JPEG 2000 codestream has no tile data"
    return None


def jpeg2000_codestream(data: bytes) -> bytes | None:
    """The JPEG 2000 codestream in ``data``, bare or JP2-wrapped (some writers, GDCM, wrap it); None if neither."""
    if data[:2] == b"\xff\x4f":
        return data
    inner = jp2_codestream(data)
    return inner if inner is not None and inner[:2] == b"\xff\x4f" else None


def jp2_codestream(data: bytes) -> bytes | None:
    """The contiguous-codestream ('jp2c') box of a JP2 file, or None when ``data`` is not one."""
    if data[4:8] != b"jP  ":
        return None
    at = 0
    while at + 8 <= len(data):
        length, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        header = 8
        if length == 1 and at + 16 <= len(data):
            length, header = int.from_bytes(data[at + 8:at + 16], "big"), 16
        if kind == b"jp2c":
            end = len(data) if length == 0 else at + length
            return data[at + header:end] + data[end:][:1]  # keep DICOM's pad byte, if any
        if length < header:
            return None
        at += length
    return None


def _false_marker(data: bytes, start: int, end: int, sop_eph: bool) -> str | None:
    """Coded JPEG 2000 data never holds 0xFF followed by a byte above 0x8F (bit stuffing)."""
    coded = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
    if coded.size < 2:
        return None
    hits = np.flatnonzero((coded[:-1] == 0xFF) & (coded[1:] > 0x8F))
    if sop_eph and hits.size:
        codes = coded[hits + 1]
        hits = hits[(codes != 0x91) & (codes != 0x92)]
    if hits.size:
        return f"the JPEG 2000 coded data hold a false marker at byte {start + int(hits[0])}"
    return None


# --- lossless JPEG (ISO 10918-1 process 14, Huffman) -----------------------------------------------


def check_jpeg_lossless(data: bytes, samples: int) -> str | None:
    """Every Huffman code valid, the last sample's code ending on the scan's last byte.

    A damaged lossless stream usually still decodes: the Huffman codes resynchronise within a few
    samples, but the decoder then finishes before or after the end of the data, which libjpeg
    never reports. The walk is done for every bit position at once (the length of the code that
    would start there), then chased ``samples`` steps by repeated squaring (binary lifting).
    """
    parsed = _parse_jpeg(data)
    if isinstance(parsed, str):
        return parsed
    tables, components, table_of, restart, scan_start = parsed
    if components != 1:
        return None  # colour lossless JPEG: not checked here (no such radiographs seen)
    table = tables.get(table_of)
    if table is None:
        return "the lossless JPEG scan uses a Huffman table that is not defined"
    intervals, tail = _entropy_segments(data, scan_start)
    if isinstance(intervals, str):
        return intervals
    if not _trailing_ok(data, tail):
        return f"the lossless JPEG stream has {len(data) - tail} bytes after its end marker"
    counts = [restart] * (len(intervals) - 1) if restart else []
    counts.append(samples - sum(counts))
    if counts[-1] <= 0 or (restart and counts[-1] > restart):
        return (f"the lossless JPEG stream has {len(intervals)} restart intervals where {samples} samples "
                f"need {-(-samples // restart)}")
    lengths = _code_lengths(table)
    for number, (segment, count) in enumerate(zip(intervals, counts)):
        problem = _walk(segment, count, lengths)
        if problem:
            where = f" (restart interval {number})" if len(intervals) > 1 else ""
            return f"the lossless JPEG data {problem}{where}"
    return None


def _parse_jpeg(data: bytes):
    """(Huffman tables, component count, the scan's DC table, restart interval, first scan byte)."""
    if len(data) < 4 or _u16(data, 0) != 0xFFD8:
        return "the JPEG stream does not start with its SOI marker"
    at, tables, components, restart = 2, {}, 0, 0
    while True:
        if at + 4 > len(data):
            return "the JPEG header is cut short"
        if data[at] != 0xFF:
            return f"the JPEG header is damaged at byte {at}"
        if data[at + 1] == 0xFF:  # fill byte
            at += 1
            continue
        marker, length = data[at + 1], _u16(data, at + 2)
        body = data[at + 4:at + 2 + length]
        if length < 2 or len(body) != length - 2:
            return f"the JPEG header has a damaged marker segment at byte {at}"
        if marker == 0xC4:  # DHT, possibly several tables
            pos = 0
            while pos + 17 <= len(body):
                counts = list(body[pos + 1:pos + 17])
                total = sum(counts)
                tables[body[pos]] = (counts, list(body[pos + 17:pos + 17 + total]))
                pos += 17 + total
        elif marker in (0xC3, 0xC7, 0xCB, 0xCF) and len(body) >= 6:
            components = body[5]
        elif marker == 0xDD and len(body) >= 2:
            restart = _u16(body, 0)
        elif marker == 0xDA:
            if len(body) < 3:
                return "the JPEG scan header is damaged"
            return tables, components, body[2] >> 4, restart, at + 2 + length
        at += 2 + length


def _entropy_segments(data: bytes, start: int):
    """The scan's coded bytes (stuffing removed) split at restart markers, and where EOI ends."""
    raw = np.frombuffer(data, dtype=np.uint8, offset=start)
    marks = np.flatnonzero((raw[:-1] == 0xFF) & (raw[1:] != 0x00) & (raw[1:] != 0xFF))
    segments, begin, expected = [], 0, 0
    for mark in marks:
        code = int(raw[mark + 1])
        if 0xD0 <= code <= 0xD7:
            if code != 0xD0 + expected:
                return f"the lossless JPEG restart markers are out of order at byte {start + int(mark)}", 0
            expected = (expected + 1) % 8
            segments.append(_unstuff(raw[begin:mark]))
            begin = int(mark) + 2
            continue
        if code == 0xD9:
            segments.append(_unstuff(raw[begin:mark]))
            return segments, start + int(mark) + 2
        return f"the lossless JPEG data hold an unexpected marker 0xFF{code:02X} at byte {start + int(mark)}", 0
    return "the lossless JPEG stream is cut short (no end-of-image marker)", 0


def _unstuff(coded: np.ndarray) -> np.ndarray:
    """0xFF 0x00 -> 0xFF, after dropping the fill 0xFF bytes a marker may follow."""
    stop = coded.size
    while stop and coded[stop - 1] == 0xFF:
        stop -= 1
    coded = coded[:stop]
    keep = np.ones(coded.size, dtype=bool)
    keep[1:] &= ~((coded[:-1] == 0xFF) & (coded[1:] == 0x00))
    return coded[keep]


def _code_lengths(table) -> np.ndarray:
    """For every 16-bit window, the bits taken by the code at its start and its extra bits; 0 = invalid."""
    counts, symbols = table
    lookup = np.zeros(1 << 16, dtype=np.int32)
    code, k = 0, 0
    for bits, count in enumerate(counts, start=1):
        for _ in range(count):
            if k >= len(symbols) or code >= (1 << bits):
                return lookup
            ssss = symbols[k]
            extra = 0 if ssss >= 16 else ssss
            first = code << (16 - bits)
            lookup[first:first + (1 << (16 - bits))] = bits + extra
            code += 1
            k += 1
        code <<= 1
    return lookup


_MAX_WALK_BITS = 64 << 20  # 8 MiB of coded data (the table takes 4 bytes per coded bit)
_CHUNK_BITS = 1 << 22


def _walk(segment: np.ndarray, count: int, lengths: np.ndarray) -> str | None:
    nbits = int(segment.size) * 8
    if count <= 0:
        return None if nbits == 0 else "hold coded data beyond the last sample"
    if nbits > _MAX_WALK_BITS:
        return None  # too large to walk within the memory bound; the decoders' own checks remain
    padded = np.concatenate([segment, np.full(4, 0xFF, dtype=np.uint8)]).astype(np.uint32)
    words = (padded[:-3] << 24) | (padded[1:-2] << 16) | (padded[2:-1] << 8) | padded[3:]
    # nxt[p]: where the code starting at bit p (with its extra bits) ends; nbits + 1 when there is
    # no valid code there or it would reach past the data
    end, bad = nbits, nbits + 1
    nxt = array("i", bytes(4 * (nbits + 2)))
    table = np.frombuffer(memoryview(nxt), dtype=np.int32)
    for first in range(0, nbits, _CHUNK_BITS):
        positions = np.arange(first, min(first + _CHUNK_BITS, nbits), dtype=np.int32)
        window = (words[positions >> 3] >> (16 - (positions & 7)).astype(np.uint32)) & 0xFFFF
        step = lengths[window]
        target = positions + step
        target[(step == 0) | (target > nbits)] = bad
        table[first:first + positions.size] = target
    table[end] = bad  # another code after the end: the data ran out before the last sample
    table[bad] = bad
    del table
    state = 0
    for _ in range(count):  # a sequential chase: ~40 ns a sample on array('i')
        state = nxt[state]
    if state == bad:
        return "run out or hold an invalid Huffman code before the last sample (bytes were changed or removed)"
    if state == end:
        return None
    left = nbits - state
    if left <= 7 and np.all(np.unpackbits(segment[-1:])[8 - left:] == 1):
        return None  # only the last byte's padding is left: 1-bits, as ISO 10918-1 F.1.2.3 requires
    return f"hold {left} coded bits after the last sample (bytes were changed or added)"


# --- RLE (DICOM PS3.5 annex G) ------------------------------------------------------------------


def check_rle(data: bytes, rows: int, columns: int, planes: int) -> str | None:
    """Segment offsets, and every segment decoding to exactly one plane with nothing left over."""
    if len(data) < 64:
        return "the RLE header is cut short"
    header = np.frombuffer(data, dtype="<u4", count=16)
    segments = int(header[0])
    if segments != planes:
        return f"the RLE header lists {segments} segments where the image needs {planes}"
    offsets = [int(v) for v in header[1:1 + segments]] + [len(data)]
    if offsets[0] != 64 or any(b <= a for a, b in zip(offsets, offsets[1:])):
        return "the RLE segment offsets are damaged"
    want = rows * columns
    for number in range(segments):
        produced, used = _packbits_length(data, offsets[number], offsets[number + 1], want)
        if produced != want:
            return f"RLE segment {number + 1} decodes to {produced} bytes instead of {want}"
        left = offsets[number + 1] - used
        if left > 1 or (left == 1 and data[used] not in (0x00, 0x80)):
            return f"RLE segment {number + 1} has {left} bytes after its last run"
    return None


def _packbits_length(data: bytes, start: int, stop: int, want: int) -> tuple[int, int]:
    """(bytes the segment would produce, where its last run ended); stops once ``want`` is exceeded."""
    at, produced = start, 0
    while at < stop and produced < want:
        header = data[at]
        if header < 128:  # literal run of header + 1 bytes
            need = header + 1
            if at + 1 + need > stop:
                return -1, at
            produced += need
            at += 1 + need
        elif header > 128:  # replicate the next byte 257 - header times
            if at + 2 > stop:
                return -1, at
            produced += 257 - header
            at += 2
        else:  # 128: no operation
            at += 1
    return produced, at
