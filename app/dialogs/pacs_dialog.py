"""File > Open from PACS…: search the PACS (C-FIND), list the studies, retrieve the chosen ones.

Search and retrieve run on a background thread (``PacsJob``); the dialog shows progress, can cancel,
and announces every retrieved study's files with ``retrieved`` so the window adds them to the worklist.
Faults are one line in the dialog, naming the PACS and the study.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from core.pacs import PacsConfig
from core.pacs.query import StudyMatch, StudyQuery, find_studies
from core.pacs.retrieve import retrieve_study

from ..services.pacs_service import PacsJob
from .settings_dialog import form_row

COLUMNS = ("Date", "Patient", "Patient ID", "Description", "Accession", "Modalities", "Images")


class OpenFromPacsDialog(QDialog):
    retrieved = Signal(list)  # paths (str) of one retrieved study

    def __init__(self, config: PacsConfig, study_folder: Path, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Open from PACS — {config.label}")
        self.config = config
        self.study_folder = Path(study_folder)
        self.studies: list[StudyMatch] = []
        self.job: PacsJob | None = None

        self.patient_id = QLineEdit()
        self.patient_name = QLineEdit(placeholderText="family name, or with * wildcards")
        self.accession = QLineEdit()
        self.use_dates = QCheckBox("From")
        self.date_from = QDateEdit(QDate.currentDate().addMonths(-1), calendarPopup=True)
        self.date_to = QDateEdit(QDate.currentDate(), calendarPopup=True)
        for edit in (self.date_from, self.date_to):
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.use_dates.toggled.connect(self.date_from.setEnabled)
        self.use_dates.toggled.connect(self.date_to.setEnabled)
        self.cr = QCheckBox("CR", checked=True)
        self.dx = QCheckBox("DX", checked=True)
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(lambda _index: self.retrieve())
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retrieve_button = QPushButton("Retrieve")
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)

        form = QFormLayout()
        form.addRow("Patient ID:", self.patient_id)
        form.addRow("Patient name:", self.patient_name)
        form.addRow("Accession number:", self.accession)
        form.addRow("Study date:", form_row(self.use_dates, self.date_from, QLabel("to"), self.date_to))
        form.addRow("Modality:", form_row(self.cr, self.dx, self.search_button))
        buttons = form_row(self.progress, self.retrieve_button, self.cancel_button, self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.resize(900, 560)
        self._update_buttons()

    # -- actions --------------------------------------------------------------------------------
    def query(self) -> StudyQuery:
        modalities = tuple(m for m, box in (("CR", self.cr), ("DX", self.dx)) if box.isChecked()) or ("CR", "DX")
        dates = (self.date_from.date().toPython(), self.date_to.date().toPython()) if self.use_dates.isChecked() else (None, None)
        return StudyQuery(patient_id=self.patient_id.text(), patient_name=self.patient_name.text(),
                          date_from=dates[0], date_to=dates[1], modalities=modalities, accession=self.accession.text())

    def search(self) -> None:
        if self.busy:
            return
        query, config = self.query(), self.config
        self._start(PacsJob(lambda cancelled, _progress: find_studies(config, query, cancelled), self),
                    self._on_found, f"Searching {config.label}…")

    def retrieve(self) -> None:
        chosen = self.selected_studies()
        if self.busy or not chosen:
            return
        config, folder = self.config, self.study_folder
        emit = self.retrieved.emit

        def work(cancelled, progress):
            results = []
            for study in chosen:
                result = retrieve_study(config, study.study_uid, folder, label=study.label, progress=progress,
                                        cancelled=cancelled)
                if result.paths:
                    emit([str(p) for p in result.paths])
                results.append(result)
                if result.cancelled:
                    break
            return results

        self._start(PacsJob(work, self), self._on_retrieved, f"Retrieving {len(chosen)} study(ies)…")

    def cancel(self) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.message.setText("Cancelling…")

    def selected_studies(self) -> list[StudyMatch]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.studies[row] for row in rows if row < len(self.studies)]

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.running

    # -- job plumbing ---------------------------------------------------------------------------
    def _start(self, job: PacsJob, on_done, text: str) -> None:
        self.job = job
        job.progress.connect(self._on_progress)
        job.finished.connect(on_done)
        job.failed.connect(self._on_failed)
        self.message.setText(text)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        job.start()
        self._update_buttons()

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_found(self, studies: list[StudyMatch]) -> None:
        self.studies = list(studies)
        self.table.setRowCount(len(self.studies))
        for row, study in enumerate(self.studies):
            values = (_date(study.study_date), study.patient_name.replace("^", " ").strip(), study.patient_id,
                      study.description, study.accession, "/".join(study.modalities),
                      "" if study.instances is None else str(study.instances))
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self._finish(f"{len(self.studies)} study(ies) found on {self.config.label}" if self.studies
                     else f"No CR/DX study on {self.config.label} matches; widen the search")

    def _on_retrieved(self, results) -> None:
        images = sum(len(r.paths) for r in results)
        cancelled = any(r.cancelled for r in results)
        failed = sum(r.failed for r in results)
        text = f"{images} image(s) retrieved into the worklist" + (" (cancelled)" if cancelled else "")
        self._finish(text + (f"; the PACS could not send {failed} image(s)" if failed else ""))

    def _on_failed(self, message: str) -> None:
        self._finish(message)

    def _finish(self, text: str) -> None:
        self.message.setText(text)
        self.progress.setVisible(False)
        self.job = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.busy
        self.search_button.setEnabled(not busy)
        self.retrieve_button.setEnabled(not busy and bool(self.table.selectionModel().selectedRows()))
        self.cancel_button.setEnabled(busy)

    def done(self, result: int) -> None:
        if self.job is not None and self.job.running:
            self.job.cancel()
            self.job.wait(10)
        super().done(result)


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else value

