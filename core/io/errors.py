"""One error type for every study that can't be read, carrying a message a person can act on."""

from __future__ import annotations

from pathlib import Path


class StudyReadError(Exception):
    """A file could not be opened as a study.

    ``str(error)`` is one line: the file, what is wrong, and what to do about it.
    """

    def __init__(self, path: str | Path, problem: str, advice: str = "") -> None:
        self.path = str(path)
        self.problem = _one_line(problem)
        self.advice = _one_line(advice)
        line = f"{_one_line(self.path)}: {self.problem}"
        if self.advice:
            line += f" ({self.advice})"
        super().__init__(line)


def _one_line(text: str) -> str:
    """Join line breaks so library messages (and odd file names) still give a one-line error."""
    return " ".join(part.strip() for part in str(text).splitlines()).strip()
