"""What the open image is: modality, body part, size, spacing, photometric, and the loader's warnings.

Warnings (not a chest, no spacing, colour converted) are shown prominently because they change how
far the mask and the areas can be trusted.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from core.io.study import Study

FIELDS = ("File", "Modality", "Body part", "View", "Size", "Bits stored", "Spacing", "Photometric")


class InfoPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.values: dict[str, QLabel] = {}
        for name in FIELDS:
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[name] = label
            form.addRow(f"{name}:", label)
        self.warnings = QLabel()
        self.warnings.setWordWrap(True)
        self.warnings.setObjectName("warnings")
        self.warnings.setStyleSheet("QLabel#warnings { color: #f0b43c; }")
        self.warnings.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(form)
        layout.addWidget(self.warnings)
        layout.addStretch(1)

    def show_study(self, study: Study | None) -> None:
        if study is None:
            for label in self.values.values():
                label.setText("–")
            self.warnings.setVisible(False)
            return
        spacing = "not known (areas in pixels)"
        if study.pixel_spacing_mm:
            row, col = study.pixel_spacing_mm
            spacing = f"{row:.3f} × {col:.3f} mm ({study.spacing_source})"
        photometric = study.photometric + (" (inverted for display)" if study.inverted else "")
        values = {
            "File": study.display_name,
            "Modality": study.modality or ("image file" if study.kind == "image" else "–"),
            "Body part": study.body_part or "–",
            "View": study.view_position or "–",
            "Size": f"{study.width} × {study.height} px",
            "Bits stored": str(study.bits_stored),
            "Spacing": spacing,
            "Photometric": photometric,
        }
        for name, text in values.items():
            self.values[name].setText(text)
        self.values["File"].setToolTip(str(study.path))
        if study.warnings:
            self.warnings.setText("\n".join(f"⚠ {w}" for w in study.warnings))
            self.warnings.setVisible(True)
        else:
            self.warnings.setVisible(False)
