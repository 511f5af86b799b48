"""Tools > Models…: every model (bundled and fine-tuned), which one is active, and what to do with them.

The records and every action come from ``core.models.catalog`` and ``core.models.package`` (the same
ones ``adaqat models`` uses); this dialog only shows them and asks. Problems are shown in the dialog
as one line, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from core.models import catalog
from core.models.catalog import ModelRecord
from core.models.errors import ModelLoadError
from core.models.package import PACKAGE_SUFFIX, UntrustedPackageError, export_package, import_package
from core.models.signing import verify_model_dir

COLUMNS = ("Active", "Name", "Version", "Parent", "Backbone", "Precision", "Size", "Trainable / total",
           "Created", "Training images", "Training data", "Held-out Dice (new / parent)", "Validation Dice",
           "Signed by")
PATH_ROLE = Qt.ItemDataRole.UserRole


def _count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def _dice(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "–"


def training_data_cell(record: ModelRecord) -> tuple[str, str]:
    """(cell, tooltip): each data set the model learned from with its image count; licences in the tooltip."""
    sources = record.card.training_data
    if not sources:
        return "–", "This model card does not record its training data"
    cell = " + ".join(f"{s.source} {s.images:,}" for s in sources)
    return cell, "\n".join(f"{s.source}: {s.images:,} images; licence: {s.licence or 'not recorded'}" for s in sources)


def record_cells(record: ModelRecord) -> list[str]:
    """The table row of one catalog record."""
    card, metrics = record.card, record.metrics
    parent = f"{card.parent.name} {card.parent.version}" if card.parent else "–"
    return [
        "●" if record.active else "",
        card.display_name + ("" if card.display_name == card.name else f" ({card.name})"),
        card.version,
        parent,
        card.backbone,
        card.precision.upper(),
        f"{record.size_bytes / 2**20:.1f} MB" if record.size_bytes is not None else "?",
        f"{_count(card.parameters.trainable)} / {_count(card.parameters.total_with_adapters)}",
        card.created[:10] or "–",
        _count(card.training_images),
        training_data_cell(record)[0],
        heldout_cell(record),
        _dice(metrics.get("val_dice")),
        signer_cell(record),
    ]


def heldout_cell(record: ModelRecord) -> str:
    """New / parent held-out Dice with the data it was measured on and how many images (a verdict on one
    clinic's convention says nothing of another's)."""
    metrics = record.metrics
    if metrics.get("heldout_dice_new") is None:
        return "–"
    comparison = record.card.clinic_comparison or {}
    about = comparison.get("about") or {}
    where = f" on {comparison.get('images', '?')} images" + (f" of {about['data']}" if about.get("data") else "")
    verdict = "" if comparison.get("better", True) else " (not better)"
    return f"{_dice(metrics['heldout_dice_new'])} / {_dice(metrics.get('heldout_dice_parent'))}{where}{verdict}"


def not_better_warning(record: ModelRecord) -> str | None:
    """The warning shown before activating a clinic model its own run did not judge better."""
    comparison = record.card.clinic_comparison or {}
    if comparison.get("better", True):
        return None
    old = (comparison.get("active_model") or {}).get("dice_mean")
    new = (comparison.get("new_model") or {}).get("dice_mean")
    scores = f" (Dice {old:.4f} -> {new:.4f})" if isinstance(old, float) and isinstance(new, float) else ""
    return (f"{record.card.display_name} was NOT better than its parent on the {comparison.get('images', '?')} "
            f"held-out images its run compared{scores}. Masks may get worse. Activate it anyway, to try it?")


def signer_cell(record: ModelRecord) -> str:
    """Who vouches for the model's files (checked now, against this computer's trusted keys)."""
    status = verify_model_dir(record.path)
    if status.trusted:
        return f"{status.signer} (verified)"
    return {"unknown-signer": f"unknown key {status.key_id} (not trusted)", "invalid": "ALTERED after signing",
            "unsigned": "unsigned"}[status.state]


class ModelsDialog(QDialog):
    model_activated = Signal(str)  # the active model's name or folder

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(1100, 380)
        self.records: list[ModelRecord] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.activate_button = QPushButton("Activate")
        self.rollback_button = QPushButton("Roll back")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete")
        self.export_button = QPushButton("Export…")
        self.import_button = QPushButton("Import…")
        self.close_button = QPushButton("Close")
        self.activate_button.clicked.connect(lambda: self.activate_selected())
        self.rollback_button.clicked.connect(lambda: self.roll_back())
        self.rename_button.clicked.connect(lambda: self.rename_selected())
        self.delete_button.clicked.connect(lambda: self.delete_selected())
        self.export_button.clicked.connect(lambda: self.export_selected())
        self.import_button.clicked.connect(lambda: self.import_file())
        self.close_button.clicked.connect(self.accept)
        self.rollback_button.setToolTip("Activate the model that was active before the current one")
        buttons = QHBoxLayout()
        for button in (self.activate_button, self.rollback_button, self.rename_button, self.delete_button,
                       self.export_button, self.import_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self.refresh()

    # -- content --------------------------------------------------------------------------------
    def refresh(self) -> None:
        records, problems = catalog.list_models()
        self.records = records
        self.table.setRowCount(len(records))
        for row, record in enumerate(records):
            for column, text in enumerate(record_cells(record)):
                item = QTableWidgetItem(text)
                item.setData(PATH_ROLE, str(record.path))
                if column == 0:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if COLUMNS[column] == "Training data":
                    item.setToolTip(training_data_cell(record)[1])
                self.table.setItem(row, column, item)
        if problems:
            self.show_message("Some model folders could not be read: " + "; ".join(problems))
        self._update_buttons()

    def select_path(self, path: str | Path) -> None:
        wanted = Path(path).resolve()
        for row, record in enumerate(self.records):
            if record.path == wanted:
                self.table.selectRow(row)
                return

    def selected(self) -> ModelRecord | None:
        rows = self.table.selectionModel().selectedRows()
        return self.records[rows[0].row()] if rows else None

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    def _update_buttons(self) -> None:
        record = self.selected()
        removable = record is not None and not record.bundled
        self.activate_button.setEnabled(record is not None and not record.active)
        self.rename_button.setEnabled(removable)
        self.delete_button.setEnabled(removable and not record.active)
        self.export_button.setEnabled(record is not None)
        self.rollback_button.setEnabled(bool(catalog.activation_history()))

    # -- actions --------------------------------------------------------------------------------
    def _run(self, action, done: str) -> bool:
        try:
            result = action()
        except (ModelLoadError, ValueError) as error:
            self.show_message(str(error))
            return False
        except OSError as error:
            self.show_message(f"{error.filename or 'model'}: {error.strerror or error}")
            return False
        self.refresh()
        self.show_message(done.format(result=result))
        return True

    def activate_selected(self, confirm=None) -> bool:
        """Activate the selected model; one its run judged not better needs ``confirm(warning)`` (the
        button asks with a dialog; a caller without one is refused)."""
        if confirm is None:
            confirm = self._confirm_not_better
        record = self.selected()
        if record is None:
            return False
        value = record.active_value
        name = f"{record.card.display_name} {record.card.version}"
        warning = not_better_warning(record)
        if warning and confirm is not None and not confirm(warning):
            self.show_message(f"Not activated: {name}")
            return False
        if self._run(lambda: catalog.set_active_model(value), f"Active model: {name}"):
            self.model_activated.emit(value)
            return True
        return False

    def roll_back(self) -> bool:
        holder = {}

        def action():
            holder["model"] = catalog.roll_back()
            return holder["model"]

        if self._run(action, "Rolled back: active model is now {result}"):
            self.model_activated.emit(holder["model"])
            return True
        return False

    def rename_selected(self, label: str | None = None) -> bool:
        record = self.selected()
        if record is None:
            return False
        if label is None:
            label, ok = QInputDialog.getText(self, "Rename model", "New name:", text=record.card.display_name)
            if not ok:
                return False
        path = record.path
        return self._run(lambda: catalog.rename_model(path, label).display_name, "Renamed to {result}")

    def delete_selected(self, confirm: bool = True) -> bool:
        record = self.selected()
        if record is None:
            return False
        name = f"{record.card.display_name} {record.card.version}"
        if confirm:
            answer = QMessageBox.question(self, "Delete model", f"Delete {name} from this computer?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
        path = record.path
        return self._run(lambda: catalog.delete_model(path), f"Deleted {name}")

    def export_selected(self, out_file: str | Path | None = None) -> bool:
        record = self.selected()
        if record is None:
            return False
        if out_file is None:
            suggested = f"{catalog.install_label(record.card)}{PACKAGE_SUFFIX}"
            out_file, _ = QFileDialog.getSaveFileName(self, "Export model", suggested,
                                                      f"Model package (*{PACKAGE_SUFFIX})")
            if not out_file:
                return False
        path = record.path
        return self._run(lambda: "{} (sha256 {})".format(*export_package(path, out_file)), "Exported {result}")

    def import_file(self, package: str | Path | None = None, confirm=None) -> bool:
        """Import a package; an unsigned or unknown-signer one only after ``confirm(text)`` (default: a dialog)."""
        if package is None:
            package, _ = QFileDialog.getOpenFileName(self, "Import model", "", f"Model package (*{PACKAGE_SUFFIX})")
            if not package:
                return False
        holder = {}
        confirm = confirm or self._confirm_untrusted

        def action():
            try:
                holder["path"] = import_package(package)
            except UntrustedPackageError as error:
                if not confirm(f"{Path(package).name} is {error.status.describe()}.\n\nIts masks would carry the "
                               "model name written inside it, but nobody you trust vouches for that. Install it "
                               "only if you know where it came from.\n\nInstall anyway?"):
                    raise ValueError(f"Not installed: {Path(package).name} is {error.status.describe()}") from None
                holder["path"] = import_package(package, allow_unsigned=True)
            return holder["path"].name

        if self._run(action, "Imported and verified {result}; select it and press Activate to use it"):
            self.select_path(holder["path"])
            return True
        return False

    def _confirm_not_better(self, text: str) -> bool:
        answer = QMessageBox.warning(self, "Model not judged better", text,
                                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                     QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _confirm_untrusted(self, text: str) -> bool:
        answer = QMessageBox.warning(self, "Unverified model package", text,
                                     QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                     QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes
