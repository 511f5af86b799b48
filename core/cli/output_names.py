"""Mask file names for ``adaqat segment``: one per input, never an input's own path, never shared.

``x.dcm`` -> ``x.png``. When that name is taken — by another input of the run (``chest.dcm`` and
``chest.png`` in one folder), by an input file itself (``--out`` is the input folder), or by a
name that differs only in case (macOS and Windows folders ignore case) — the input's extension is
kept (``chest.dcm.png``), then a counter is added (``chest-2.png``). Names longer than a file system
allows (255 bytes) are shortened, with a hash of the full name so shortened names stay distinct.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

MAX_NAME_BYTES = 255
# atomic_write_bytes writes ".<name>.<8 random>.tmp" first: leave room for it.
_TEMP_OVERHEAD = len(".") + len(".xxxxxxxx") + len(".tmp")
SUFFIX = ".png"


def plan_outputs(inputs: list[Path], out_dir: Path) -> dict[Path, Path]:
    """{input: mask path under ``out_dir``} for every input, all distinct and none an input."""
    protected = {_identity(path) for path in inputs}
    used: set[str] = set()
    plan: dict[Path, Path] = {}
    for path in inputs:
        for name in _candidates(path):
            target = out_dir / name
            if name.casefold() in used or _identity(target) in protected:
                continue
            used.add(name.casefold())
            plan[path] = target
            break
    return plan


def _candidates(path: Path):
    stem, suffix = path.stem or path.name, path.suffix
    yield _fit(stem)
    if suffix:
        yield _fit(stem + suffix)
    counter = 2
    while True:
        yield _fit(stem, f"-{counter}")
        counter += 1


def _fit(stem: str, tail: str = "") -> str:
    """``stem + tail + .png``, with the stem cut (and a hash added) so the name fits in 255 bytes."""
    limit = MAX_NAME_BYTES - _TEMP_OVERHEAD
    name = f"{stem}{tail}{SUFFIX}"
    if len(os.fsencode(name)) <= limit:
        return name
    digest = "~" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:10]
    short = stem
    while short and len(os.fsencode(f"{short}{digest}{tail}{SUFFIX}")) > limit:
        short = short[:-1]  # whole characters, so a multi-byte character is never split
    return f"{short}{digest}{tail}{SUFFIX}"


def _identity(path: Path) -> tuple:
    """What makes two paths the same file: (device, inode) when it exists, else the absolute path."""
    try:
        info = path.stat()
        return ("inode", info.st_dev, info.st_ino)
    except OSError:
        return ("path", os.path.normcase(os.path.abspath(path)))
