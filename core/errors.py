"""The one base of the engine's errors, so the command line and the GUI catch a single type.

Every error the engine raises for a person to act on (a study that can't be read, a model that can't be
loaded, a store, export, PACS or training problem) derives from ``AdaqatError``; ``str(error)`` is one line
naming the file or thing, what is wrong and what to do. Anything else that escapes is a bug.
"""

from __future__ import annotations


class AdaqatError(Exception):
    """An engine error whose ``str()`` is one line a person can act on."""
