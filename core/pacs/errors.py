"""The one exception of ``core.pacs``: a one-line message naming the PACS (and the study when known)."""

from __future__ import annotations

from ..errors import AdaqatError
from ..safe_text import one_line


class PacsError(AdaqatError):
    """A PACS operation failed; ``str()`` is one line: which PACS, which study, what went wrong, what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))
