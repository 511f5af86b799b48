"""Files that could not be opened, with the reason, listed without interrupting the user.

A folder import can hit dozens of bad files; a modal dialog per file would make import unusable,
so they are collected here and the dock is raised once.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget


class ProblemsPanel(QWidget):
    problems_added = Signal(int)  # total count

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["File", "Problem"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, 260)
        self.summary = QLabel("No problems")
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.tree)
        self._seen: set[tuple[str, str]] = set()

    def add_problem(self, path: str, reason: str) -> None:
        """Add one row (duplicates ignored). ``reason`` is StudyReadError's one-line str."""
        if (path, reason) in self._seen:
            return
        self._seen.add((path, reason))
        name = path.replace("\\", "/").rsplit("/", 1)[-1] or path
        prefix = f"{path}: "
        shown = reason[len(prefix):] if reason.startswith(prefix) else reason
        item = QTreeWidgetItem([name, shown])
        item.setToolTip(0, path)
        item.setToolTip(1, reason)
        item.setData(0, Qt.ItemDataRole.UserRole, path)
        self.tree.addTopLevelItem(item)
        self._update_summary()
        self.problems_added.emit(self.count())

    def count(self) -> int:
        return self.tree.topLevelItemCount()

    def entries(self) -> list[tuple[str, str]]:
        """(path, full reason) for every row, in order."""
        return [
            (self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole), self.tree.topLevelItem(i).toolTip(1))
            for i in range(self.count())
        ]

    def clear(self) -> None:
        self.tree.clear()
        self._seen.clear()
        self._update_summary()

    def _update_summary(self) -> None:
        n = self.count()
        self.summary.setText("No problems" if n == 0 else f"{n} file{'s' if n != 1 else ''} could not be opened")
