"""What a reviewed image's status becomes when its mask is changed afterwards.

An accepted mask enters training as "the model was right, unedited". Once a person changes it, that
is no longer true: the image is "corrected" (the reader's mask), or a rejected mask that the reader
went on to fix is now a corrected one. An unreviewed mask that a person edits is the reader's work
too: it becomes "corrected", so "Next unreviewed" does not skip past it as if nobody had looked, nor
does it come back as unreviewed for a second reading.
"""

from __future__ import annotations

EDITED_TO_CORRECTED = ("unreviewed", "accepted", "rejected")


def status_after_edit(status: str) -> str | None:
    """The new status after a person's edit, or None when it stays as it is."""
    return "corrected" if status in EDITED_TO_CORRECTED else None
