"""The one error type of the annotation store: a one-line message a reader can act on."""

from __future__ import annotations

import errno

from core.errors import AdaqatError
from core.safe_text import one_line

__all__ = ["StoreError", "one_line", "write_advice"]

DISK_FULL_ERRNOS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
NOT_WRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_advice(error: OSError, full: str, not_writable: str, other: str) -> str:
    """What to tell a person whose write failed: ``full`` (disk or quota), ``not_writable``, else ``other``."""
    if error.errno in DISK_FULL_ERRNOS:
        return full
    return not_writable if error.errno in NOT_WRITABLE_ERRNOS else other


class StoreError(AdaqatError):
    """The annotation store could not do what was asked; nothing half-done was registered.

    ``str(error)`` is one line: what failed, why, and what to do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class StoreConflict(StoreError):
    """Another reader changed this image after the caller loaded it: the caller's save or review was
    built on an older state and is not written (optimistic concurrency on the image's version).

    ``base`` is the version the caller built on, ``current`` the version now; ``reader`` and ``what``
    say who changed it and how ("mask" or "review: accepted"), for the message the reader sees.
    """

    def __init__(self, name: str, base: int, current: int, reader: str, what: str) -> None:
        self.base, self.current, self.reader, self.what = base, current, reader, what
        super().__init__(
            f"{name} was changed by {reader or 'another reader'} ({what}) after you opened it; "
            "reload it to see their work, or keep both versions in the history"
        )
