"""Crash-safe file writes: a temporary file in the same folder, fsync, rename over, fsync the folder.

After ``atomic_write_bytes`` returns, the file is complete and durable under its final name; if it
raises, the final name holds whatever it held before and no temporary file is left behind. A kill at
any moment leaves at most a ``.<name>.<random>.tmp`` file, which ``remove_stale_temp_files`` sweeps.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from pathlib import Path

TMP_SUFFIX = ".tmp"

# Folder fsync is not supported everywhere (some network and FUSE file systems); those errors only
# mean "durability of the rename is up to the OS", not that the write failed.
_DIR_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.EBADF, errno.EACCES, errno.EPERM, getattr(errno, "ENOTSUP", -1)}


def fsync_dir(directory: str | Path) -> None:
    """Make a rename/creation inside ``directory`` durable (no-op on Windows, which can't open folders)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError as error:
        if error.errno in _DIR_FSYNC_UNSUPPORTED:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably; returns ``path``."""
    path = Path(path)
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(directory)
    return path


def remove_stale_temp_files(directory: str | Path, max_age_s: float = 60.0) -> int:
    """Delete temporary files left by killed writers, if older than ``max_age_s``; returns how many."""
    removed = 0
    now = time.time()
    try:
        candidates = list(Path(directory).glob(f".*{TMP_SUFFIX}"))
    except OSError:
        return 0
    for candidate in candidates:
        try:
            if now - candidate.stat().st_mtime >= max_age_s:
                candidate.unlink()
                removed += 1
        except OSError:
            continue
    return removed
