"""The worklist: every imported image with its review status.

DICOM files are grouped patient > study > series > image, so a folder from a PACS export reads like
a PACS; PNG/JPEG files are listed flat. The widget only displays; statuses come from the store.
"""

from __future__ import annotations

from datetime import datetime, timezone

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QCheckBox, QHeaderView, QLineEdit, QTreeView, QVBoxLayout, QWidget

from core.store import ImageRecord

from .worklist_filter import KEY_ROLE, SEARCH_ROLE, ReviewFilterProxy
from .worklist_quality import CONFIDENCE_COLUMN, CONFIDENCE_ROLE, SORT_ROLE, confidence_order, fill_quality_item

KIND_ROLE = Qt.ItemDataRole.UserRole + 2

STATUSES = ("unreviewed", "accepted", "corrected", "rejected")
STATUS_STYLE = {
    "unreviewed": ("○ unreviewed", QColor(150, 150, 150)),
    "accepted": ("✓ accepted", QColor(90, 200, 110)),
    "corrected": ("✎ corrected", QColor(240, 180, 60)),
    "rejected": ("✕ rejected", QColor(235, 90, 90)),
}


class WorklistPanel(QWidget):
    image_activated = Signal(str)  # image key (the store's), not the path: a moved file is the same image

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.model = QStandardItemModel(0, 3, self)
        self.model.setHorizontalHeaderLabels(["Image", "Status", "Confidence"])
        self.proxy = ReviewFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.filter = QLineEdit(placeholderText="Filter: file, status, flag, date…", clearButtonEnabled=True)
        self.filter.setToolTip("Shows the images whose file name, review status, quality flags or review date "
                               "contain the text; patient names and IDs are not searched")
        self.filter.textChanged.connect(self.set_filter)
        self.view = QTreeView()
        self.view.setModel(self.proxy)
        self.view.setUniformRowHeights(True)
        self.view.setAlternatingRowColors(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.view.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(CONFIDENCE_COLUMN, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionsClickable(True)
        header.sectionClicked.connect(self._on_header_clicked)
        self.least_confident_first = QCheckBox("Least confident first")
        self.least_confident_first.setToolTip("Sort by the masks' confidence, least first; Next unreviewed follows this order")
        self.least_confident_first.toggled.connect(self.sort_by_confidence)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.least_confident_first)
        layout.addWidget(self.view)
        self._items: dict[str, QStandardItem] = {}
        self._groups: dict[tuple, QStandardItem] = {}
        self._suppress = False
        self._open_key: str | None = None  # the image last selected (the one shown), kept through filtering

    # -- content --------------------------------------------------------------------------------
    def add_record(self, record: ImageRecord) -> bool:
        """Add one registered image (False if already listed, then only its status is refreshed)."""
        key = record.key
        if key in self._items:
            self.set_status(key, record.status)
            self._items[key].setToolTip(str(record.path))
            self._items[key].setData(search_text(record), SEARCH_ROLE)
            return False
        name = QStandardItem(record.display_name)
        name.setData(key, KEY_ROLE)
        name.setToolTip(str(record.path))
        status_item = QStandardItem()
        self._items[key] = name
        parent = self._dicom_parent(record) if record.kind == "dicom" else self.model.invisibleRootItem()
        quality_item = QStandardItem()
        fill_quality_item(quality_item, None)
        parent.appendRow([name, status_item, quality_item])
        self.set_status(key, record.status)
        name.setData(search_text(record), SEARCH_ROLE)  # after set_status: the stored review date, not today
        if record.kind == "dicom":
            self.view.expand(self.proxy.mapFromSource(parent.index()))
            for ancestor in self._ancestors(parent):
                self.view.expand(self.proxy.mapFromSource(ancestor.index()))
        return True

    def set_filter(self, text: str) -> None:
        """Filter the list; the open image stays open (and selected when it still matches)."""
        current = self._open_key or self.current_key()
        self._suppress = True  # rows vanishing under the cursor must not open another image
        try:
            self.proxy.set_needle(text)
            self.view.expandAll()  # DICOM groups stay open: the matches are what the reader wants to see
            item = self._items.get(str(current)) if current else None
            index = self.proxy.mapFromSource(item.index()) if item is not None else QModelIndex()
            if index.isValid():
                self.view.setCurrentIndex(index)
                self.view.scrollTo(index)
            else:
                self.view.selectionModel().clearCurrentIndex()
        finally:
            self._suppress = False

    def set_status(self, key: str, status: str) -> None:
        item = self._items.get(str(key))
        if item is None:
            return
        status_item = item.parent().child(item.row(), 1) if item.parent() else self.model.item(item.row(), 1)
        text, color = STATUS_STYLE.get(status, (status, QColor(150, 150, 150)))
        status_item.setText(text)
        status_item.setData(status, KIND_ROLE)
        status_item.setForeground(QBrush(color))
        if status != "unreviewed":  # a review just saved: today is its date (add_record sets the stored one)
            text = str(item.data(SEARCH_ROLE) or "")
            today = datetime.now(timezone.utc).date().isoformat()
            if today not in text:
                item.setData(f"{text} {today}".strip(), SEARCH_ROLE)

    def status(self, key: str) -> str:
        item = self._items.get(str(key))
        if item is None:
            return ""
        status_item = item.parent().child(item.row(), 1) if item.parent() else self.model.item(item.row(), 1)
        return str(status_item.data(KIND_ROLE) or "")

    def keys(self) -> list[str]:
        """All image keys in display (tree) order."""
        out: list[str] = []

        def walk(parent: QStandardItem) -> None:
            for row in range(parent.rowCount()):
                child = parent.child(row, 0)
                key = child.data(KEY_ROLE)
                if key:
                    out.append(str(key))
                walk(child)

        walk(self.model.invisibleRootItem())
        return out

    def count(self) -> int:
        return len(self._items)

    def current_key(self) -> str | None:
        index = self.view.currentIndex()
        if not index.isValid():
            return None
        value = self.proxy.mapToSource(index.siblingAtColumn(0)).data(KEY_ROLE)
        return str(value) if value else None

    def select(self, key: str, emit: bool = True) -> None:
        item = self._items.get(str(key))
        if item is None:
            return
        self._open_key = str(key)
        self._suppress = not emit
        try:
            index = self.proxy.mapFromSource(item.index())
            self.view.setCurrentIndex(index)
            self.view.scrollTo(index)
        finally:
            self._suppress = False

    def set_quality(self, key: str, quality) -> None:
        """Show a mask's confidence and flags (``MaskQuality``), or clear them (None)."""
        item = self._items.get(str(key))
        if item is None:
            return
        fill_quality_item(self._cell(item, CONFIDENCE_COLUMN), quality)

    def confidence(self, key: str) -> float | None:
        item = self._items.get(str(key))
        value = None if item is None else self._cell(item, CONFIDENCE_COLUMN).data(CONFIDENCE_ROLE)
        return None if value is None else float(value)

    def sort_by_confidence(self, on: bool = True) -> None:
        """Least confident first (on), or back to the import order (off)."""
        if on:
            self.proxy.sort(CONFIDENCE_COLUMN, Qt.SortOrder.AscendingOrder)
        else:
            self.proxy.sort(-1)
        if self.least_confident_first.isChecked() != on:
            self.least_confident_first.setChecked(on)

    @property
    def sorted_by_confidence(self) -> bool:
        return self.proxy.sortColumn() == CONFIDENCE_COLUMN

    def review_order(self) -> list[str]:
        """Image keys in the order "Next unreviewed" walks: by confidence when sorted so, else list order."""
        if self.sorted_by_confidence:
            descending = self.proxy.sortOrder() == Qt.SortOrder.DescendingOrder
            return confidence_order(self.keys(), self.confidence, descending)
        return self.keys()

    def _on_header_clicked(self, column: int) -> None:
        if column == CONFIDENCE_COLUMN:
            if self.sorted_by_confidence and self.proxy.sortOrder() == Qt.SortOrder.AscendingOrder:
                self.proxy.sort(CONFIDENCE_COLUMN, Qt.SortOrder.DescendingOrder)
            else:
                self.sort_by_confidence(True)
        else:
            self.sort_by_confidence(False)

    def _cell(self, item: QStandardItem, column: int) -> QStandardItem:
        parent = item.parent()
        cell = parent.child(item.row(), column) if parent else self.model.item(item.row(), column)
        if cell is None:
            cell = QStandardItem()
            (parent or self.model.invisibleRootItem()).setChild(item.row(), column, cell)
        return cell

    def neighbour(self, key: str | None, step: int, only_unreviewed: bool) -> str | None:
        """The next (step=1) or previous (step=-1) image after ``key`` in review order, wrapping around."""
        keys = self.review_order()
        if not keys:
            return None
        start = keys.index(key) if key in keys else (-1 if step > 0 else len(keys))
        for offset in range(1, len(keys) + 1):
            candidate = keys[(start + step * offset) % len(keys)]
            if candidate == key:
                continue
            if not only_unreviewed or self.status(candidate) == "unreviewed":
                return candidate
        return None

    def clear(self) -> None:
        self.model.removeRows(0, self.model.rowCount())
        self._items.clear()
        self._groups.clear()

    # -- internals ------------------------------------------------------------------------------
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if self._suppress or not current.isValid():
            return
        key = self.proxy.mapToSource(current.siblingAtColumn(0)).data(KEY_ROLE)
        if key:
            self._open_key = str(key)
            self.image_activated.emit(str(key))

    def _dicom_parent(self, record: ImageRecord) -> QStandardItem:
        name = record.patient_name.replace("^", " ").strip()
        patient_label = _join(name, f"({record.patient_id})" if record.patient_id else "")
        study_label = record.study_description or "Study"
        series_label = record.series_description or "Series"
        levels = (
            (("patient", record.patient_id or record.patient_name), patient_label or "Unknown patient"),
            (("study", record.study_uid or study_label), study_label),
            (("series", record.series_uid or series_label), series_label),
        )
        parent = self.model.invisibleRootItem()
        key: tuple = ()
        for part, label in levels:
            key = key + (part,)
            group = self._groups.get(key)
            if group is None:
                group = QStandardItem(label)
                group.setToolTip(label)
                font = group.font()
                font.setBold(part[0] == "patient")
                group.setFont(font)
                parent.appendRow([group, QStandardItem()])
                self._groups[key] = group
            parent = group
        return parent

    @staticmethod
    def _ancestors(item: QStandardItem) -> list[QStandardItem]:
        out = []
        while item is not None and item.parent() is not None:
            item = item.parent()
            out.append(item)
        return out


def search_text(record: ImageRecord) -> str:
    """What the filter may match besides the status and flag columns: file name and review date."""
    return " ".join(part for part in (record.path.name, record.display_name, record.updated_at[:10]) if part)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)
