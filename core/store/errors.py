"""The one error type of the annotation store: a one-line message a reader can act on."""

from __future__ import annotations


class StoreError(Exception):
    """The annotation store could not do what was asked; nothing half-done was registered.

    ``str(error)`` is one line: what failed, why, and what to do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: object) -> str:
    """Join line breaks so library messages still give a one-line error."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())
