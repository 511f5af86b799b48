"""Look at a file before parsing it: can it be read at all, and what format do its bytes say it is.

Dispatch goes by content, not by extension, because hospital exports are often extension-less
(``IM0001``) or misnamed (a DICOM saved as ``.jpg``). The checks here are cheap (one small read),
so folder scans and the loader can call them on every file.
"""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

from core.io.errors import StudyReadError
from core.io.regular_file import NotRegularFile, open_regular

HEAD_BYTES = 512
DICOM_MAGIC = b"DICM"
DICOM_MAGIC_OFFSET = 128
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

# Two-letter value representations; used to recognise an explicit-VR dataset without a preamble.
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US "
    b"UT UV".split()
)


def read_head(path: str | Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes; StudyReadError for a missing, unreadable, directory or empty path.

    Every reader starts here, so these everyday mistakes get the same plain message everywhere.
    """
    path = Path(path)
    try:
        if path.is_dir():
            raise StudyReadError(
                path,
                "this is a folder, not a file",
                "open a file, or add the folder to scan it",
            )
        with open_regular(path) as handle:
            head = handle.read(size)
    except StudyReadError:
        raise
    except NotRegularFile as exc:
        raise StudyReadError(path, f"this is {exc.kind}, not a regular file", "open the image file itself") from None
    except FileNotFoundError:
        raise StudyReadError(
            path,
            "file not found",
            "check the path; the file may have been moved or deleted",
        ) from None
    except PermissionError:
        raise StudyReadError(path, "permission denied", "ask for read access to this file") from None
    except IsADirectoryError:
        raise StudyReadError(
            path,
            "this is a folder, not a file",
            "open a file, or add the folder to scan it",
        ) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        if exc.errno == errno.ENAMETOOLONG:
            reason = "the path is too long"
        raise StudyReadError(
            path,
            f"the file could not be read: {reason}",
            "check the disk or network share",
        ) from None
    if not head:
        raise StudyReadError(
            path,
            "the file is empty (0 bytes)",
            "the copy or export was probably interrupted; copy it again",
        )
    return head


def looks_like_raw_dicom(head: bytes) -> bool:
    """True for a DICOM dataset written without the 128-byte preamble and 'DICM' marker.

    Such files start directly with a little-endian tag of group 0002 (file meta) or 0008 (the
    first group of every image dataset), followed by either a VR code (explicit VR) or a short
    32-bit length (implicit VR). Checking this before ``force=True`` keeps pydicom from
    "reading" arbitrary bytes as a dataset.
    """
    if len(head) < 8:
        return False
    group, element = struct.unpack("<HH", head[:4])
    if group not in (0x0002, 0x0008) or element > 0x00FF:
        return False
    if head[4:6] in _VRS:
        return True
    (length,) = struct.unpack("<I", head[4:8])
    return 0 < length < 256


def detect_format(head: bytes) -> str | None:
    """'dicom', 'dicom-raw' (no preamble), 'png', 'jpeg', or None when the bytes say nothing."""
    if head[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == DICOM_MAGIC:
        return "dicom"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if looks_like_raw_dicom(head):
        return "dicom-raw"
    return None


def has_dicom_magic(path: str | Path) -> bool:
    """True when the file carries the 'DICM' marker at byte 128 (False for anything unreadable).

    Folder scans call this on every extension-less entry, so it must never block: pipes are False.
    """
    try:
        with open_regular(path) as handle:
            handle.seek(DICOM_MAGIC_OFFSET)
            return handle.read(4) == DICOM_MAGIC
    except OSError:
        return False


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a PNG IHDR or JPEG SOF header, without decoding; None if not found.

    Lets the image reader refuse absurd sizes before the decoder allocates memory for them. The
    whole file is walked (segment lengths make this cheap), and bytes between segments are skipped
    the way libjpeg skips them, so a size header placed after padding is still found.
    """
    if data.startswith(PNG_MAGIC) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return height, width
    if not data.startswith(JPEG_MAGIC):
        return None
    pos = 2
    sof_markers = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:  # extraneous bytes: the decoder searches for the next marker
            pos = data.find(b"\xff", pos + 1)
            if pos < 0:
                return None
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in sof_markers and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return height, width
        if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            return None
        if marker in (0xD8, 0x01, 0x00) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        pos += 2 + max(length, 2)
    return None
