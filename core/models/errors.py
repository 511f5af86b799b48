"""Errors raised while building or loading models; each message names the file and the mismatch."""

from core.errors import AdaqatError


class ModelLoadError(AdaqatError):
    """A model or weight file can't be used. ``str()`` is one line a person can act on."""
