"""Open only regular files: a named pipe (FIFO) would block ``open()`` forever, a device never ends.

The file is opened with ``O_NONBLOCK`` (so opening a FIFO without a writer returns at once), checked
with ``fstat`` on that same descriptor (no race between the check and the read), then switched back
to blocking reads. Every reader and the folder scan go through here, so neither the CLI nor the
viewer's reading thread can hang on a pipe.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


class NotRegularFile(OSError):
    """The path exists but is not a regular file; ``kind`` says what it is ("a named pipe (FIFO)")."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(f"{kind}, not a regular file")
        self.filename = str(path)
        self.kind = kind


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words; "" for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path) -> BinaryIO:
    """A binary read handle on ``path``; ``NotRegularFile`` for FIFOs, sockets, devices and folders."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind:
            raise NotRegularFile(path, kind)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path) -> bytes:
    """The whole content of a regular file (``NotRegularFile`` otherwise)."""
    with open_regular(path) as handle:
        return handle.read()
