"""Lung area and lung fraction of the current mask (numbers come from core.export.measurements)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget


class MeasurementsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.area = QLabel("–")
        self.fraction = QLabel("–")
        for label in (self.area, self.fraction):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Lung area:", self.area)
        form.addRow("Lung fraction:", self.fraction)

    def show_values(self, area_text: str, fraction_text: str) -> None:
        self.area.setText(area_text)
        self.fraction.setText(fraction_text)

    def clear(self) -> None:
        self.show_values("–", "–")
