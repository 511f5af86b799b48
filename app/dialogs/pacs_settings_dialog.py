"""Tools > PACS settings…: where the PACS is, who we are, who may send to us, and what happens on Accept."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from core.pacs import PacsConfig
from core.pacs.config import LOCALHOST, parse_ae_list

from ..services.pacs_settings import ANY_ADDRESS, PacsSettings
from .settings_dialog import form_row


class PacsSettingsDialog(QDialog):
    def __init__(self, pacs: PacsSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS settings")
        self.pacs = pacs
        config = pacs.config()
        self.pacs_ae = QLineEdit(config.pacs_ae)
        self.pacs_host = QLineEdit(config.pacs_host)
        self.pacs_port = _port(config.pacs_port)
        self.our_ae = QLineEdit(config.our_ae)
        self.our_port = _port(config.our_port)
        self.accepted_aes = QLineEdit(", ".join(config.accepted_calling_aes))
        self.accepted_aes.setPlaceholderText("none: nobody may send images to this computer")
        self.listen = QCheckBox("Receive images (DICOM listener) while the viewer runs")
        self.listen.setChecked(pacs.listen())
        self.open_network = QCheckBox("Accept connections from other computers (else this computer only)")
        self.open_network.setChecked(config.listen_host != LOCALHOST)
        self.send_on_accept = QCheckBox("Send the DICOM SEG and lung-area report to the PACS on Accept")
        self.send_on_accept.setChecked(config.send_on_accept)
        self.connect_timeout = _seconds(config.connect_timeout_s)
        self.timeout = _seconds(config.timeout_s)
        self.tls_ca = QLineEdit(config.tls_ca_file, placeholderText="empty: no TLS")
        self.tls_ca.setToolTip("PEM file of the CA that signed the PACS certificate; set it to use DICOM over TLS")
        self.tls_cert = QLineEdit(config.tls_cert_file, placeholderText="only if the PACS asks for one")
        self.tls_key = QLineEdit(config.tls_key_file)
        self.study_folder = QLineEdit(str(pacs.study_folder()))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #e05a5a")

        form = QFormLayout(self)
        form.addRow("PACS AE title:", self.pacs_ae)
        form.addRow("PACS host:", self.pacs_host)
        form.addRow("PACS port:", self.pacs_port)
        form.addRow("Our AE title:", self.our_ae)
        form.addRow("Our port:", self.our_port)
        form.addRow("Accepted calling AE titles:", self.accepted_aes)
        form.addRow("", self.listen)
        form.addRow("", self.open_network)
        form.addRow("", self.send_on_accept)
        form.addRow("Connect timeout:", self.connect_timeout)
        form.addRow("Network timeout:", self.timeout)
        form.addRow("TLS: CA file (PEM):", self.tls_ca)
        form.addRow("TLS: our certificate:", self.tls_cert)
        form.addRow("TLS: our key:", self.tls_key)
        form.addRow("Study folder:", form_row(self.study_folder, browse))
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept_if_valid)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(560, self.sizeHint().height())

    def config(self) -> PacsConfig:
        return PacsConfig(
            pacs_ae=self.pacs_ae.text().strip(), pacs_host=self.pacs_host.text().strip(), pacs_port=self.pacs_port.value(),
            our_ae=self.our_ae.text().strip(), our_port=self.our_port.value(),
            listen_host=ANY_ADDRESS if self.open_network.isChecked() else LOCALHOST,
            accepted_calling_aes=parse_ae_list(self.accepted_aes.text()),
            connect_timeout_s=self.connect_timeout.value(), timeout_s=self.timeout.value(),
            send_on_accept=self.send_on_accept.isChecked(),
            tls_ca_file=self.tls_ca.text().strip(), tls_cert_file=self.tls_cert.text().strip(),
            tls_key_file=self.tls_key.text().strip(),
        )

    def apply(self) -> None:
        """Write the values to the settings (called by the window after OK)."""
        self.pacs.set_config(self.config())
        self.pacs.set_listen(self.listen.isChecked())
        self.pacs.set_study_folder(self.study_folder.text().strip())
        self.pacs.sync()

    def _accept_if_valid(self) -> None:
        problems = self.config().problems()
        if problems:
            self.problem.setText(problems[0])
            return
        self.accept()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for studies from the PACS", self.study_folder.text())
        if folder:
            self.study_folder.setText(folder)


def _port(value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(1, 65535)
    box.setValue(int(value))
    return box


def _seconds(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.5, 3600)
    box.setSuffix(" s")
    box.setValue(float(value))
    return box
