"""The one error type of the exporters: a one-line message naming the file, the problem and what to do."""

from __future__ import annotations

import os

from ..errors import AdaqatError
from ..store.errors import one_line, write_advice


class ExportError(AdaqatError):
    """An export failed; no partial output file was left under the target name."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def write_failure(target: object, error: OSError) -> ExportError:
    reason = one_line(error.strerror) if error.strerror else (os.strerror(error.errno) if error.errno else str(error))
    advice = write_advice(error, "free disk space and export again", "choose a folder you can write to",
                          "check the target folder and export again")
    return ExportError(f"could not write {target}: {reason}; {advice}")
