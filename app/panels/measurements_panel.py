"""Lung area (both lungs and per side) and lung fraction of the current mask.

The numbers come from core (``core.export.measurements``, ``core.review.lung_sides``); this panel shows them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget


class MeasurementsPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.area = QLabel("–")
        self.right = QLabel("–")
        self.left = QLabel("–")
        self.fraction = QLabel("–")
        self.sides = QLabel("")
        self.sides.setWordWrap(True)
        for label in (self.area, self.right, self.left, self.fraction, self.sides):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Lung area:", self.area)
        form.addRow("Right lung:", self.right)
        form.addRow("Left lung:", self.left)
        form.addRow("Lung fraction:", self.fraction)
        form.addRow("Sides:", self.sides)

    def show_values(self, area_text: str, fraction_text: str, right_text: str = "–", left_text: str = "–",
                    sides_text: str = "") -> None:
        self.area.setText(area_text)
        self.fraction.setText(fraction_text)
        self.right.setText(right_text)
        self.left.setText(left_text)
        self.sides.setText(sides_text)

    def clear(self) -> None:
        self.show_values("–", "–")
