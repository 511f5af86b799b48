"""Where received images go: ``<folder>/<Study UID>/<SOP Instance UID>.dcm``, written atomically.

Both the retrieve (C-GET) and the listener (C-STORE SCP) store through here, so an image is either
complete under its final name or not there at all: a kill, a full disk or a dropped association
never leaves a half-written study in the worklist. Names come from UIDs only (never patient data);
a UID that is not a plain dotted number is replaced by its hash so a sender cannot pick a path.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..store.atomic import atomic_write_bytes

# The projection radiographs the model reads; other SOP classes are not negotiated.
RADIOGRAPH_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
)
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def safe_uid_name(uid: str) -> str:
    uid = str(uid or "").strip().rstrip("\x00")
    if _UID.match(uid) and len(uid) <= 64:
        return uid
    return "x" + hashlib.sha256(uid.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def instance_path(folder: Path, study_uid: str, sop_uid: str) -> Path:
    return Path(folder) / safe_uid_name(study_uid) / f"{safe_uid_name(sop_uid)}.dcm"


def store_instance(folder: Path, study_uid: str, sop_uid: str, encoded: bytes) -> Path:
    """Write one received instance (the Part 10 file bytes) atomically; returns its path. Raises OSError."""
    target = instance_path(folder, study_uid, sop_uid)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(target, encoded)


def radiograph_contexts():
    """Presentation contexts for the radiograph SOP classes with every transfer syntax pynetdicom knows.

    Every transfer syntax: the loader decodes JPEG, JPEG 2000, JPEG-LS and RLE, so the PACS never has
    to transcode (which Orthanc cannot do for JPEG 2000 without a plugin).
    """
    from pynetdicom import ALL_TRANSFER_SYNTAXES, build_context

    return [build_context(uid, ALL_TRANSFER_SYNTAXES) for uid in RADIOGRAPH_SOP_CLASSES]
