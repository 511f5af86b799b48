"""Find openable study files among files and folders the user dropped or chose.

Folders are walked recursively in sorted order so the study list is stable between runs. Besides
.dcm/.dicom/.png/.jpg/.jpeg, extension-less files are taken when they carry the DICOM 'DICM'
marker (PACS and CD exports name files IM0001, 00000001...). Hidden files and folders (dot names,
or the Windows hidden attribute) and DICOMDIR indexes are skipped. A pipe or device named
explicitly is kept, so the reader refuses it with a message instead of it vanishing; inside a folder
one is only taken when its name says study (``b.dcm``), and the reader refuses it without blocking.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from core.io.sniff import has_dicom_magic

STUDY_SUFFIXES = frozenset({".dcm", ".dicom", ".png", ".jpg", ".jpeg"})


def find_study_files(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """Study files under ``paths`` (files kept in the given order, each folder sorted), no duplicates."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    seen: set[Path] = set()
    for entry in paths:
        path = Path(entry)
        named = not path.is_dir()
        candidates = [path] if named and path.exists() else _walk(path) if not named else []
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen and (_is_study_file(candidate) or (named and not candidate.is_file())):
                seen.add(key)
                found.append(candidate)
    return found


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for folder, dirs, names in os.walk(root, onerror=lambda _error: None):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(Path(folder) / d))
        files.extend(Path(folder) / name for name in sorted(names))
    return sorted(files)


def _is_study_file(path: Path) -> bool:
    if _is_hidden(path) or path.name.upper() == "DICOMDIR":
        return False
    suffix = path.suffix.lower()
    if suffix in STUDY_SUFFIXES:
        return True
    return suffix == "" and has_dicom_magic(path)


def _is_hidden(path: Path) -> bool:
    if path.name.startswith("."):
        return True
    try:
        attributes = getattr(path.stat(), "st_file_attributes", 0)  # Windows only
    except OSError:
        return False
    return bool(attributes & getattr(stat, "FILE_ATTRIBUTE_HIDDEN", 0))
