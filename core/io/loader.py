"""``load_study(path)``: open any supported file, choosing the reader by content, not extension.

Hospital exports are often extension-less or misnamed, so the first bytes decide: 'DICM' at byte
128 (or a preamble-less DICOM header) -> DICOM; PNG/JPEG signatures -> image reader. The extension
is only a tie-breaker for files whose bytes say nothing, to pick the most helpful error message.
"""

from __future__ import annotations

from pathlib import Path

from core.io.dicom_reader import read_dicom
from core.io.errors import StudyReadError
from core.io.image_reader import read_image
from core.io.sniff import detect_format, read_head
from core.io.study import Study

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ""})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


def load_study(path: str | Path) -> Study:
    """Open one study. Bad input of any kind raises StudyReadError (one line, with advice)."""
    path = Path(path)
    head = read_head(path)  # missing, folder, empty, permission denied
    fmt = detect_format(head)
    try:
        if fmt in ("dicom", "dicom-raw"):
            return read_dicom(path)
        if fmt in ("png", "jpeg"):
            return read_image(path)
        suffix = path.suffix.lower()
        if suffix in DICOM_SUFFIXES:
            return read_dicom(path)  # gives the specific "not a DICOM file" reason
        if suffix in IMAGE_SUFFIXES:
            raise StudyReadError(
                path,
                f"not a valid {suffix[1:].upper()} image: the file does not start with a PNG/JPEG signature",
                "the file is damaged or renamed; open a DICOM, PNG or JPEG file",
            )
        raise StudyReadError(
            path,
            "unrecognised file format: not DICOM, PNG or JPEG",
            "open a DICOM, PNG or JPEG file",
        )
    except MemoryError:
        raise StudyReadError(
            path,
            "not enough memory to open this image",
            "close other studies and try again",
        ) from None
