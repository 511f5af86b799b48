"""Status bar: messages on the left; pixel under the cursor, window, zoom and model state on the right."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

MESSAGE_MS = 8000


class ViewerStatusBar(QStatusBar):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.pixel = QLabel("")
        self.pixel.setMinimumWidth(210)
        self.window_text = QLabel("")
        self.zoom = QLabel("")
        self.zoom.setMinimumWidth(70)
        self.model = QLabel("Model: loading…")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(90)
        self.busy.setMaximumHeight(12)
        self.busy.setTextVisible(False)
        self.busy.setVisible(False)
        for widget in (self.pixel, self.window_text, self.zoom, self.busy, self.model):
            self.addPermanentWidget(widget)

    def message(self, text: str) -> None:
        self.showMessage(text, MESSAGE_MS)

    def show_pixel(self, x: int, y: int, pixels: np.ndarray | None) -> None:
        """Position and the stored (modality) value, which is what a radiologist quotes, not the screen grey."""
        if pixels is None or x < 0 or y < 0:
            self.pixel.setText("")
            return
        value = float(pixels[y, x])
        text = f"{value:.0f}" if value.is_integer() else f"{value:.2f}"
        self.pixel.setText(f"x {x}  y {y}   value {text}")

    def set_zoom(self, scale: float) -> None:
        self.zoom.setText(f"{scale * 100:.0f} %")

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.busy.setVisible(busy)
        if text:
            self.model.setText(text)
