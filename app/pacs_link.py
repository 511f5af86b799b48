"""The window's PACS features in one place: Open from PACS, PACS settings, Send to PACS (and on
Accept), and the optional listener whose arrivals join the worklist while the viewer is open.

The window creates one ``PacsLink`` and connects three menu actions and its review hook to it; the
work itself is in ``core.pacs`` (through ``app.services.pacs_service``). The outbox is opened on first
use, or at start when results are still waiting from an earlier session, so they are retried.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from PySide6.QtCore import QObject

from core.segment.predictor import Predictor

from .dialogs.pacs_dialog import OpenFromPacsDialog
from .dialogs.pacs_settings_dialog import PacsSettingsDialog
from .services.pacs_service import ListenerService, OutboxService
from .services.pacs_settings import PacsSettings

SENT_STATUSES = ("accepted", "corrected")


class PacsLink(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.settings = PacsSettings(window.settings)
        self.dialog: OpenFromPacsDialog | None = None
        self._outbox: OutboxService | None = None
        self.listener = ListenerService(lambda: window.store, self._predictor, self)  # the store in use, even after a switch
        self.listener.arrived.connect(self._on_arrived)
        self._arrival_batches: dict[int, str] = {}  # import batch -> image key, to show its confidence once listed
        window.studies.import_finished.connect(self._on_import_finished)
        if (self.settings.outbox_folder() / "outbox.sqlite").exists():
            self.outbox()  # retry what an earlier session could not send
        if self.settings.listen():
            self.start_listener()

    # -- find and fetch -------------------------------------------------------------------------
    def open_dialog(self) -> OpenFromPacsDialog:
        if self.dialog is None:
            self.dialog = OpenFromPacsDialog(self.settings.config(), self.settings.study_folder(), self.window)
            self.dialog.retrieved.connect(lambda paths: self.window.open_paths(paths, activate_first=True))
            self.dialog.finished.connect(self._forget_dialog)
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def _forget_dialog(self) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = None

    def open_settings(self) -> PacsSettingsDialog:
        dialog = PacsSettingsDialog(self.settings, self.window)
        dialog.accepted.connect(lambda: (dialog.apply(), self._settings_changed()))
        dialog.open()
        return dialog

    def _settings_changed(self) -> None:
        if self.settings.listen():
            self.start_listener()
        else:
            self.listener.stop()

    # -- receive --------------------------------------------------------------------------------
    def start_listener(self) -> str:
        problem = self.listener.start(self.settings.config(), self.settings.study_folder())
        self.window.status.message(problem or f"Receiving images: {self.listener.label}")
        return problem

    def _predictor(self) -> Predictor:
        loaded = self.window.segmentation.loaded_model
        if loaded is None:
            raise RuntimeError("the model is still loading")
        return Predictor(loaded)

    def _on_arrived(self, arrival) -> None:
        if arrival.error:
            self.window.status.message(f"Received image not opened: {arrival.error}")
            return
        batch = self.window.studies.import_paths([str(arrival.path)])  # joins the worklist, its mask already saved
        self._arrival_batches[batch] = arrival.key
        confidence = "" if arrival.confidence is None else f" (confidence {arrival.confidence:.2f})"
        self.window.status.message(f"Received and segmented {arrival.path.name}{confidence}")

    def _on_import_finished(self, batch: int) -> None:
        key = self._arrival_batches.pop(batch, None)
        if key and hasattr(self.window, "quality"):
            self.window.quality.refresh(key)  # the worklist's confidence column, from the store

    # -- send back ------------------------------------------------------------------------------
    def outbox(self) -> OutboxService | None:
        """The outbox service, opened on first use; None (and a status line) if its folder cannot be used."""
        if self._outbox is None:
            folder = self.settings.outbox_folder()
            try:
                self._outbox = OutboxService(folder, self.settings.config, self)
            except (OSError, sqlite3.Error) as error:
                self.window.status.message(f"PACS outbox {folder} cannot be opened ({error}); choose a folder you can write to")
                return None
            self._outbox.reported.connect(self.window.status.message)
        return self._outbox

    def can_send(self) -> bool:
        document = self.window.document
        return document.is_open and document.mask is not None and document.study.kind == "dicom"

    def send_current(self) -> bool:
        """Queue the current mask's SEG and lung-area SR for the PACS (sent in the background)."""
        if not self.can_send():
            self.window.status.message("Sending to the PACS needs a DICOM image with a mask")
            return False
        document = self.window.document
        origin = document.origin
        source = origin.source if origin.source in ("model", "prompt", "edit") else "edit"
        outbox = self.outbox()
        if outbox is None:
            return False
        outbox.send(Path(document.path), document.mask.copy(), origin.model, document.reader, source,
                    document.study.pixel_spacing_mm)
        return True

    def on_review(self, status: str) -> None:
        """After Accept/Corrected: send the result if the setting says so."""
        if status in SENT_STATUSES and self.settings.config().send_on_accept and self.can_send():
            self.send_current()

    def shutdown(self) -> None:
        if self.dialog is not None:
            self.dialog.done(0)
        self.listener.stop()
        if self._outbox is not None:
            self._outbox.shutdown()
