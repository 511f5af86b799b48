"""The one error type of the exporters: a one-line message naming the file, the problem and what to do."""

from __future__ import annotations

import errno
import os

from ..errors import AdaqatError
from ..store.errors import one_line


class ExportError(AdaqatError):
    """An export failed; no partial output file was left under the target name."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def write_failure(target: object, error: OSError) -> ExportError:
    reason = one_line(error.strerror) if error.strerror else (os.strerror(error.errno) if error.errno else str(error))
    if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        advice = "free disk space and export again"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "choose a folder you can write to"
    else:
        advice = "check the target folder and export again"
    return ExportError(f"could not write {target}: {reason}; {advice}")
