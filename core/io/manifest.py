"""Training data listed in a manifest CSV (``id,image,mask,split``), validated row by row.

Paths are relative to the CSV or absolute. Masks: 0 background, 255 lung, 127 ignore. A bad row
(missing file, unreadable image, size mismatch, empty mask) is reported with its row number and
skipped; it never stops a run.
"""

from __future__ import annotations

import csv
import io
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AdaqatError

REQUIRED_COLUMNS = ("id", "image", "mask", "split")


class ManifestError(AdaqatError):
    """The manifest as a whole is unusable (missing, unreadable, wrong columns)."""


@dataclass(frozen=True)
class Sample:
    id: str
    image: Path
    mask: Path
    split: str
    row: int


@dataclass
class Manifest:
    path: Path
    samples: list[Sample]
    problems: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    text, note = _read_text(path)
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        lacking = [c for c in REQUIRED_COLUMNS if c not in columns]
        if lacking:
            raise ManifestError(f"{path}: manifest lacks column(s) {', '.join(lacking)} (needs {','.join(REQUIRED_COLUMNS)})")
        samples, problems = [], []
        for row_number, row in enumerate(reader, start=2):
            sample, problem = _sample_from_row(path.parent, row, row_number)
            if problem:
                problems.append(f"{path}:{row_number}: {problem}; row skipped")
            else:
                samples.append(sample)
    return Manifest(path, samples, ([note] if note else []) + problems)


def _read_text(path: Path) -> tuple[str, str]:
    """The manifest's text and a note when it was not UTF-8.

    Spreadsheets on Windows save CSV as Latin-1 / cp1252; its bytes then decode as Latin-1 (every byte
    is a character there), so accented file names still resolve. A pipe or device is refused, never
    read (it would block).
    """
    try:
        if not path.is_dir() and path.exists() and not stat.S_ISREG(path.stat().st_mode):
            raise ManifestError(f"{path}: the manifest is not a regular file (a pipe or device); give the CSV file")
        data = path.read_bytes()
    except OSError as error:
        raise ManifestError(f"{path}: cannot open the manifest ({error.strerror or error})") from None
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        return data.decode("cp1252" if _is_cp1252(data) else "latin-1"), f"{path}: not UTF-8; read as Latin-1 (Windows-1252)"


def _is_cp1252(data: bytes) -> bool:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


def _sample_from_row(base: Path, row: dict, row_number: int) -> tuple[Sample | None, str]:
    values = {k: (row.get(k) or "").strip() for k in REQUIRED_COLUMNS}
    empty = [k for k, v in values.items() if not v]
    if empty:
        return None, f"empty {', '.join(empty)}"
    image, mask = _resolve(base, values["image"]), _resolve(base, values["mask"])
    for label, file in (("image", image), ("mask", mask)):
        if not file.is_file():
            return None, f"{label} file not found: {file}"
    return Sample(values["id"], image, mask, values["split"], row_number), ""


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
