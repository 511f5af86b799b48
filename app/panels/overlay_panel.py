"""Mask display controls and provenance: which model made the mask, its version, FP32 or INT8."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QLabel, QRadioButton, QSizePolicy, QSlider, QVBoxLayout, QWidget

from core.models.artifact import ModelInfo


class ElidedLabel(QLabel):
    """One line that ends in "…" when too narrow; the full text is in the tooltip."""

    def __init__(self, text: str = "") -> None:
        super().__init__()
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(20, self.width())))


class OverlayPanel(QWidget):
    opacity_changed = Signal(float)
    mode_changed = Signal(str)  # "fill" | "contour"
    visibility_changed = Signal(bool)

    def __init__(self, opacity_percent: int = 40, parent=None) -> None:
        super().__init__(parent)
        self.show_mask = QCheckBox("Show mask (M)")
        self.show_mask.setChecked(True)
        self.show_mask.toggled.connect(self.visibility_changed)
        self.fill = QRadioButton("Fill")
        self.contour = QRadioButton("Contour only")
        self.fill.setChecked(True)
        self.fill.toggled.connect(lambda on: self.mode_changed.emit("fill" if on else "contour"))
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(opacity_percent)
        self.opacity_value = QLabel(f"{opacity_percent} %")
        self.opacity_value.setMinimumWidth(36)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.model_label = ElidedLabel("–")
        self.version_label = ElidedLabel("–")
        self.precision_label = QLabel("–")
        self.source_label = QLabel("–")
        self.state_label = QLabel("")
        self.state_label.setStyleSheet("color: #7fb8ff;")

        modes = QHBoxLayout()
        modes.addWidget(self.fill)
        modes.addWidget(self.contour)
        modes.addStretch(1)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(self.opacity, 1)
        opacity_row.addWidget(self.opacity_value)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Opacity:", opacity_row)
        form.addRow("Model:", self.model_label)
        form.addRow("Version:", self.version_label)
        form.addRow("Precision:", self.precision_label)
        form.addRow("Mask from:", self.source_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.show_mask)
        layout.addLayout(modes)
        layout.addLayout(form)
        layout.addWidget(self.state_label)

    def _on_opacity(self, value: int) -> None:
        self.opacity_value.setText(f"{value} %")
        self.opacity_changed.emit(value / 100.0)

    def set_provenance(self, model: ModelInfo | None, source: str) -> None:
        """Which model made the shown mask (name, version, precision) and how it came about."""
        self.model_label.set_full_text(model.name if model else "–")
        self.version_label.set_full_text(model.version if model else "–")
        self.model_label.setToolTip(model.label if model else "")
        precision = model.precision if model else ""
        self.precision_label.setText({"int8": "INT8 (quantized)", "fp32": "FP32"}.get(precision, precision.upper() or "–"))
        self.source_label.setText(source or "–")

    def set_state(self, text: str) -> None:
        self.state_label.setText(text)
