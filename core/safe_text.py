"""Text that is safe to print in a one-line message: no line breaks, no terminal escape codes.

A file name can hold anything but '/' and NUL: an ESC sequence that recolours or clears the
terminal, a carriage return that overwrites the line, or bytes that are not UTF-8 (Python keeps
them as lone surrogates, which cannot even be written to a UTF-8 stderr). Every message that names
a file goes through ``one_line``, so what the user sees is what the name really is, escaped.
"""

from __future__ import annotations

import re

# C0 controls (but not the line breaks handled by one_line), DEL, C1 controls, lone surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with control characters and undecodable bytes written as ``\\xNN`` escapes."""
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: object) -> str:
    """Line breaks joined with spaces, then escaped: a message always stays one printable line."""
    return printable(" ".join(part.strip() for part in str(text).splitlines() if part.strip()))
