"""The one error type of the annotation store: a one-line message a reader can act on."""

from __future__ import annotations

from core.safe_text import one_line

__all__ = ["StoreError", "one_line"]


class StoreError(Exception):
    """The annotation store could not do what was asked; nothing half-done was registered.

    ``str(error)`` is one line: what failed, why, and what to do.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))

