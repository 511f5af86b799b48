"""Find a run of zero bytes in JPEG 2000 coded data longer than the stream has packets.

Why this exists: zeroed bytes (a disk block or a transfer gap overwritten with zeros) inside a
JPEG 2000 stream keep every length and marker intact. A zero byte is also a valid packet header
(an empty packet), so OpenJPEG reads the run as a string of empty packets, decodes what is left at
a lower resolution or quality, and reports nothing; neither does the code-block termination check
(jpeg2000_termination.py), since the blocks it would judge are the ones that went missing. The
decoded picture is blurred or blotched over up to 78 % of its pixels (measured on the shared files).

In an intact stream a run of zero bytes is a run of empty packet headers (plus, rarely, a zero byte
or two of coded data or of a tile-part header), so it cannot be longer than the number of packets in
a tile: layers x components x (precincts summed over resolutions), read from the main header. Measured
longest runs in intact streams: 1-2 in the shared Kakadu files (6 packets), 5 in 396 OpenJPEG streams
of chest X-rays in 13 settings, 12-18 in pydicom's GDCM / Kakadu test files (18-108 packets).
Streams with tile-specific or per-component coding styles (COD / COC in a tile-part header, COC in
the main header) are not judged: the bound would need every override.
"""

from __future__ import annotations

import math
import re

from core.io.codestream import jpeg2000_codestream

_SIZ, _COD, _COC, _SOT, _SOD = 0xFF51, 0xFF52, 0xFF53, 0xFF90, 0xFF93
_SLACK = 8  # zero bytes a run may hold beyond one per packet (coded data, tile-part header fields)
_ZERO_RUN = re.compile(rb"\x00{16,}")


def check_jpeg2000_zero_run(codestream: bytes) -> str | None:
    """None for a stream whose zero runs fit its packets (or that is not judged), else one clause."""
    codestream = jpeg2000_codestream(codestream) or b""
    packets = _packets_per_tile(codestream)
    sod = codestream.find(b"\xff\x93")
    if packets is None or sod < 0:
        return None
    longest = max((len(m.group(0)) for m in _ZERO_RUN.finditer(codestream, sod)), default=0)
    if longest <= packets + _SLACK:
        return None
    return (f"a run of {longest} zero bytes inside the JPEG 2000 coded data, where the stream has at most "
            f"{packets} packets per tile (the data were overwritten with zeros, so part of the picture would "
            f"be missing or blurred)")


def _packets_per_tile(codestream: bytes) -> int | None:
    """Upper bound of a tile's packets from the main header's SIZ and COD; None where not judged."""
    size = coding = None
    at = 2
    while at + 4 <= len(codestream):
        marker = int.from_bytes(codestream[at:at + 2], "big")
        length = int.from_bytes(codestream[at + 2:at + 4], "big")
        if marker == _SOT:
            break
        if marker >> 8 != 0xFF or length < 2:
            return None
        segment = codestream[at + 4:at + 2 + length]
        if marker == _SIZ and len(segment) >= 36:
            size = segment
        elif marker == _COD and len(segment) >= 10:
            coding = segment
        elif marker == _COC:
            return None
        at += 2 + length
    if size is None or coding is None or _tile_headers_code(codestream, at):
        return None
    def u32(offset: int) -> int:
        return int.from_bytes(size[offset:offset + 4], "big")
    width, height, x0, y0, tile_width, tile_height = (u32(2), u32(6), u32(10), u32(14), u32(18), u32(22))
    components = int.from_bytes(size[34:36], "big")
    tile_width, tile_height = min(tile_width, width - x0), min(tile_height, height - y0)
    # COD: Scod, progression order, layers (2 bytes), MCT, levels, block width, height, style, transform, precincts
    layers, levels = int.from_bytes(coding[2:4], "big"), coding[5]
    explicit = coding[0] & 0x01
    precincts = 0
    for resolution in range(levels + 1):
        scale = 2 ** (levels - resolution)
        if explicit and len(coding) > 10 + resolution:
            size_byte = coding[10 + resolution]
            across, down = 2 ** (size_byte & 0x0F), 2 ** (size_byte >> 4)
            precincts += (math.ceil(tile_width / scale / across) + 1) * (math.ceil(tile_height / scale / down) + 1)
        else:
            precincts += 1
    return layers * components * precincts


def _tile_headers_code(codestream: bytes, at: int) -> bool:
    """True if any tile-part header carries its own COD or COC."""
    while at + 12 <= len(codestream) and int.from_bytes(codestream[at:at + 2], "big") == _SOT:
        psot = int.from_bytes(codestream[at + 6:at + 10], "big")
        header = at + 12
        while header + 4 <= len(codestream):
            marker = int.from_bytes(codestream[header:header + 2], "big")
            if marker == _SOD:
                break
            if marker in (_COD, _COC):
                return True
            header += 2 + int.from_bytes(codestream[header + 2:header + 4], "big")
        if not psot:
            break
        at += psot
    return False
