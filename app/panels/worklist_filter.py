"""The worklist's filter: matches what a reader filters by, never who the patient is.

A reading room filters the list by file name, review status, quality flags and date ("rejected",
"2026-12-05", "one lung missing"). Matching the tree's labels instead would also match patient
group rows (name and ID), so typing part of a name would list that patient's images: a patient
lookup the worklist should not offer, and a surprise on a shared screen. So only image rows are
tested, against their own patient-free text; a DICOM group row is shown only when one of its
images matches (recursive filtering), and the groups stay expanded after every change.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt

KEY_ROLE = Qt.ItemDataRole.UserRole + 1  # the image key on an image row's first column (groups have none)
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 3  # patient-free text of an image row: file name, dates


class ReviewFilterProxy(QSortFilterProxyModel):
    """Image rows match on their file name, dates and every other column (status, flags)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._needle = ""
        self.setRecursiveFilteringEnabled(True)

    def set_needle(self, text: str) -> None:
        self._needle = text.strip().casefold()
        self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:  # noqa: N802 (Qt's name)
        if not self._needle:
            return True
        model = self.sourceModel()
        first = model.index(source_row, 0, source_parent)
        if not first.data(KEY_ROLE):
            return False  # a patient/study/series group: shown only through a matching image
        parts = [str(first.data(SEARCH_ROLE) or "")]
        for column in range(1, model.columnCount(source_parent)):
            cell = model.index(source_row, column, source_parent)
            parts += [str(cell.data(Qt.ItemDataRole.DisplayRole) or ""), str(cell.data(Qt.ItemDataRole.ToolTipRole) or "")]
        return self._needle in " | ".join(parts).casefold()
