"""Last-resort error handling: log the failure, tell the user in one line, never show a traceback.

The log gets the exception type and the code locations only (no message, no local values), because
messages from DICOM code can carry file names and patient names.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable

from core.errors import AdaqatError

log = logging.getLogger("adaqat.viewer")


def scrubbed_traceback(exc_type, exc_tb) -> str:
    """Frames (file, line, function) and the exception type, without the message."""
    frames = traceback.extract_tb(exc_tb)
    lines = [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
    return "Traceback (most recent call last):\n" + "\n".join(lines) + f"\n{exc_type.__name__}"


def install_excepthook(notify: Callable[[str], None]) -> Callable:
    """Replace ``sys.excepthook``; ``notify`` shows a short message (e.g. in the status bar)."""
    previous = sys.excepthook

    def hook(exc_type, exc_value, exc_tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc_value, exc_tb)
            return
        if issubclass(exc_type, AdaqatError):  # an engine error no caller caught: its one line is for the user
            log.warning("engine error %s not handled by its caller\n%s", exc_type.__name__,
                        scrubbed_traceback(exc_type, exc_tb))
            message = f"{exc_value}; the action was not completed."
        else:
            log.error("unexpected error\n%s", scrubbed_traceback(exc_type, exc_tb))
            message = f"Something went wrong ({exc_type.__name__}); the action was not completed. Details are in the log."
        try:
            notify(message)
        except Exception:  # the notifier itself failed (window gone): logging is all we can do
            pass

    sys.excepthook = hook
    return previous
