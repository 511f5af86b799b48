"""Opening the annotation database without ever starting over silently.

SQLite opens a zero-byte file as an empty database, so a store whose database was truncated (a
bad copy, a full disk during a backup tool's rewrite, a sync client) would open with no images and
no reviews, and new work would be written over the loss. So: a new database is created under a
temporary name and linked into place only once its schema is committed, which means our own code
never leaves a zero-byte ``annotations.sqlite``; any zero-byte database found is therefore damage
and is refused, as is a missing database next to saved masks. A read-only folder is named as such
(it is not damage, and "restore it from a backup" would send the reader the wrong way).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from .atomic import TMP_SUFFIX, fsync_dir
from .errors import StoreError

_START_OVER = "or move the folder away (or choose another one) to start a new, empty store"


def refuse_lost_database(db_path: Path, mask_dir: Path) -> None:
    """StoreError when the database is empty, or missing while masks are saved beside it."""
    masks = _count_masks(mask_dir)
    saved = f"; {masks} saved mask file(s) in {mask_dir.name}/ belong to reviews it no longer holds" if masks else ""
    try:
        size = db_path.stat().st_size
    except FileNotFoundError:
        if masks:
            raise StoreError(
                f"{db_path}: the annotation database is missing{saved}; restore {db_path.name} from a backup, {_START_OVER}"
            ) from None
        return
    except OSError:
        return  # unreadable: SQLite's own error (and read_only_reason) will say why
    if size == 0:
        raise StoreError(
            f"{db_path}: the annotation database is empty (0 bytes): its images and reviews are gone{saved}; "
            f"restore {db_path.name} from a backup, {_START_OVER}"
        )


def create_database(db_path: Path, prepare: Callable[[sqlite3.Connection], None]) -> None:
    """Create ``db_path`` complete (``prepare`` sets it up and migrates it) or not at all.

    Built as a hidden temporary file and hard-linked into place, which fails when another process
    created the store first (its database is then kept, ours discarded).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{db_path.name}.", suffix=TMP_SUFFIX, dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            prepare(conn)
        finally:
            conn.close()  # checkpoints and removes the -wal file
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(tmp, db_path)
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: a rename also refuses to replace on Windows
            if not db_path.exists():
                os.replace(tmp, db_path)
        fsync_dir(db_path.parent)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink()


FULL_DISK_BYTES = 1 << 20  # under 1 MiB free, SQLite cannot make its WAL and shared-memory files


def disk_full_reason(root: Path) -> str:
    """'' unless the disk holding the store is (nearly) full: then a one-line reason that says so.

    SQLite reports a full disk while opening as "disk I/O error"; without this, the message would
    suggest restoring a healthy database from a backup."""
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return ""
    if free >= FULL_DISK_BYTES:
        return ""
    return (f"{root}: the disk is full ({free // 1024} KiB free); the annotation database is not damaged: "
            "free disk space and open it again")


def read_only_reason(root: Path, db_path: Path) -> str:
    """'' when the store can be written, else a one-line reason naming the read-only part."""
    if not os.access(root, os.W_OK):
        return f"{root}: the annotation folder is read-only (or you may not write to it)"
    if db_path.exists() and not os.access(db_path, os.W_OK):
        return f"{db_path}: the annotation database is read-only (or you may not write to it)"
    return ""


def _count_masks(mask_dir: Path) -> int:
    try:
        return sum(1 for _ in mask_dir.glob("*.png"))
    except OSError:
        return 0
