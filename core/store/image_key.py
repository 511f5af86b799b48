"""Which store record an opened image belongs to: its content (pixel hash) plus its SOPInstanceUID.

Why not the UID alone: anonymisers, re-exports and test studies give different images the same
SOPInstanceUID, and a record keyed by it showed one patient's reviewed mask on another's image.
Why not the file bytes: a re-saved or moved file with the same pixels must keep its annotations.
The pixel hash covers the decoded modality values (what is shown and segmented) and their shape.

Stores written before schema 2 keyed DICOM by UID and PNG/JPEG by ``sha256:`` + 16 hex of the file;
``legacy_keys`` gives those forms so an old record can be claimed by the image it was made on.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from core.safe_text import printable

if TYPE_CHECKING:
    from core.io.study import Study

CONTENT_PREFIX = "px:"
LEGACY_FILE_PREFIX = "sha256:"


def pixel_digest(study: Study) -> str:
    """sha256 (hex) of the study's pixel values, dtype and shape; cached on the study."""
    cached = getattr(study, "_pixel_digest", None)
    if cached:
        return cached
    pixels = study.pixels
    digest = hashlib.sha256(f"{pixels.dtype.str}:{pixels.shape}".encode())
    contiguous = pixels if pixels.flags.c_contiguous else pixels.copy()
    digest.update(memoryview(contiguous).cast("B"))
    value = digest.hexdigest()
    try:
        object.__setattr__(study, "_pixel_digest", value)
    except (AttributeError, TypeError):  # a slotted or frozen stand-in: just not cached
        pass
    return value


def sop_uid(study: Study) -> str:
    """The SOPInstanceUID of a DICOM study ('' for PNG/JPEG or when absent)."""
    if getattr(study, "kind", "") != "dicom":
        return ""
    return str(getattr(getattr(study, "identifiers", None), "sop_instance_uid", "") or "").strip()


INVERTED_SUFFIX = "|inverted"


def content_key(study: Study) -> str:
    """``px:`` + 32 hex of the pixel hash, then ``|`` + the UID for DICOM that has one.

    An image shown inverted (MONOCHROME1 / Presentation LUT INVERSE) gets ``|inverted`` added: the
    same stored values with the opposite grey scale are another picture and another model input,
    so a MONOCHROME1 copy of a MONOCHROME2 file (same pixels, same UID) is a separate image.
    """
    key = CONTENT_PREFIX + pixel_digest(study)[:32]
    uid = sop_uid(study)
    key = f"{key}|{uid}" if uid else key
    return key + INVERTED_SUFFIX if getattr(study, "inverted", False) else key


def legacy_file_key(path: str | Path) -> str | None:
    """The schema-1 key of a PNG/JPEG (``sha256:`` + 16 hex of its bytes); None if unreadable."""
    from core.io.regular_file import open_regular  # never blocks on a pipe

    digest = hashlib.sha256()
    try:
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return LEGACY_FILE_PREFIX + digest.hexdigest()[:16]


def db_path(path: str | Path) -> str | bytes:
    """A path as SQLite can hold it: text, or the raw bytes when the name is not valid UTF-8."""
    text = os.path.abspath(os.fspath(path))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes kept as surrogates: store the bytes themselves
        return os.fsencode(text)
    return text


def path_from_db(value: str | bytes) -> Path:
    return Path(os.fsdecode(value) if isinstance(value, bytes) else value)


def shown_name(name: str) -> str:
    """A file name fit for the worklist and messages: undecodable bytes and control codes escaped."""
    return printable(name)
