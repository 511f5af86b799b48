"""Undoable mask changes. Each command keeps only the changed rectangle (before and after), so a
long edit session on a 3000x3000 radiograph does not hold hundreds of full-size mask copies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtGui import QUndoCommand


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) bounding the differing pixels, or None when nothing changed."""
    diff = before != after
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


class MaskEditCommand(QUndoCommand):
    """Replace the document's mask; ``apply`` receives the full new mask, a reason and the mask's origin.

    ``apply(mask, source, origin)`` is the document's setter: it shows and saves the mask. ``source``
    tells why the mask changed ("edit", "prompt", "undo", "redo"); ``origin`` is the provenance of the
    mask now shown (undo brings back the provenance of the mask it brings back).
    """

    def __init__(
        self,
        current: Callable[[], np.ndarray],
        apply: Callable[[np.ndarray, str, object], None],
        before: np.ndarray,
        after: np.ndarray,
        text: str,
        source: str = "edit",
        origins: tuple[object, object] = (None, None),
    ) -> None:
        super().__init__(text)
        self._origin_before, self._origin_after = origins
        self._current = current
        self._apply = apply
        self._source = source
        self._first = True
        self._box = changed_box(before, after)
        if self._box is None:
            self.setObsolete(True)
            self._before = self._after = None
        else:
            r0, r1, c0, c1 = self._box
            self._before = before[r0:r1, c0:c1].copy()
            self._after = after[r0:r1, c0:c1].copy()

    def redo(self) -> None:
        self._write(self._after, self._source if self._first else "redo", self._origin_after)
        self._first = False

    def undo(self) -> None:
        self._write(self._before, "undo", self._origin_before)

    def _write(self, patch: np.ndarray | None, source: str, origin) -> None:
        if self._box is None or patch is None:
            return
        r0, r1, c0, c1 = self._box
        mask = self._current().copy()
        mask[r0:r1, c0:c1] = patch
        self._apply(mask, source, origin)
