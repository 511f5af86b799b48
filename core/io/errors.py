"""One error type for every study that can't be read, carrying a message a person can act on."""

from __future__ import annotations

from pathlib import Path

from core.errors import AdaqatError
from core.safe_text import one_line as _one_line


class StudyReadError(AdaqatError):
    """A file could not be opened as a study.

    ``str(error)`` is one line: the file, what is wrong, and what to do about it. Control
    characters in the file name are escaped (``core.safe_text``), so a name cannot drive the terminal.
    """

    def __init__(self, path: str | Path, problem: str, advice: str = "") -> None:
        self.path = str(path)
        self.problem = _one_line(problem)
        self.advice = _one_line(advice)
        line = f"{_one_line(self.path)}: {self.problem}"
        if self.advice:
            line += f" ({self.advice})"
        super().__init__(line)

