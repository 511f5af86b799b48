"""Edit the preferences that change where data goes and which model runs."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ..services.settings import DEVICES, Settings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.store_path = QLineEdit(str(settings.store_path()))
        browse_store = QPushButton("Browse…")
        browse_store.clicked.connect(self._browse_store)
        self.reader = QLineEdit(settings.reader_name())
        self.model = QLineEdit(settings.model())
        self.model.setToolTip("'default', a backbone name (lite_medsam), a model folder or a checkpoint file")
        browse_model = QPushButton("Browse…")
        browse_model.clicked.connect(self._browse_model)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setCurrentText(settings.device())
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("automatic")
        self.threads.setValue(settings.threads())
        self.advance = QCheckBox("Accept, Corrected and Reject move to the next unreviewed image")
        self.advance.setChecked(settings.advance_after_review())

        form = QFormLayout(self)
        form.addRow("Annotation store:", form_row(self.store_path, browse_store))
        form.addRow("Reader name:", self.reader)
        form.addRow("Model:", form_row(self.model, browse_model))
        form.addRow("Device:", self.device)
        form.addRow("CPU threads:", self.threads)
        form.addRow("Review:", self.advance)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(560, self.sizeHint().height())

    def apply(self) -> None:
        """Write the dialog's values to the settings (called by the window after OK)."""
        self.settings.set_store_path(self.store_path.text().strip())
        self.settings.set_reader_name(self.reader.text())
        self.settings.set_model(self.model.text())
        self.settings.set_device(self.device.currentText())
        self.settings.set_threads(self.threads.value())
        self.settings.set_advance_after_review(self.advance.isChecked())
        self.settings.sync()

    def _browse_store(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Annotation store folder", self.store_path.text())
        if folder:
            self.store_path.setText(folder)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (with model.json)")
        if folder:
            self.model.setText(folder)


def form_row(*widgets: QWidget) -> QWidget:
    """Widgets side by side in one form row, the first one stretching."""
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if i == 0 else 0)
    return box
