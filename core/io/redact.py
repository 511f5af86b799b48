"""Header values never reach a message unless they are codes: a damaged or hostile file can hold a
patient's name in any element, and messages end up in logs, terminals and bug reports.

``code_value`` lets through only what the DICOM CS grammar allows (upper-case letters, digits,
space, underscore; at most 16 characters), which covers modality, photometric interpretation,
body part and VOI LUT function; anything else is described, not quoted. ``library_reason`` removes
quoted values from library exception messages ("invalid literal for int(): 'Doe^Jane'").
"""

from __future__ import annotations

import re

_CODE = re.compile(r"[A-Z0-9_ ]{1,16}")
_QUOTED = re.compile(r"""b?'[^']*'|b?"[^"]*\"""")


def code_value(value: str, unknown: str = "(not a valid code)") -> str:
    """``value`` when it is a well-formed DICOM code string, else ``unknown``."""
    return value if _CODE.fullmatch(value or "") else unknown


def library_reason(exc: BaseException, limit: int = 200) -> str:
    """A library exception as one short line, with every quoted value replaced by '…'."""
    text = _QUOTED.sub("'…'", " ".join(str(exc).split())) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
