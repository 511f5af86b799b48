"""Lung area (both lungs and per side) and lung fraction of the current mask.

The numbers, their captions and their wording come from core (``core.review.measurements``); this panel
lays out one row per ``PANEL_ROWS`` entry and shows them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from core.review.measurements import PANEL_ROWS, LungMeasurements, panel_texts


class MeasurementsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for name, caption in PANEL_ROWS:  # self.area, self.right, ...: one selectable label per row
            label = QLabel()
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            setattr(self, name, label)
            form.addRow(caption, label)
        self.clear()

    def show_measurements(self, measured: LungMeasurements | None) -> None:
        for name, text in panel_texts(measured).items():
            getattr(self, name).setText(text)

    def clear(self) -> None:
        self.show_measurements(None)
