"""The GUI-side face of the model thread: ask for masks, get signals back, never block.

Automatic requests supersede each other (opening a new image makes queued work for the old one
stale); prompt requests only supersede older prompts and auto runs for the same image.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from .workers import LatestRequest, SegmentWorker, start_thread, stop_thread


class SegmentationService(QObject):
    result = Signal(str, object, str)  # image key, SegmentationResult, "auto" | "prompt"
    error = Signal(str, str)  # image key, message
    model_ready = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    busy_changed = Signal(bool)
    resegment_progress = Signal(int, int)
    resegment_done = Signal(object)  # ResegmentReport

    _load = Signal(str, str, int)
    _run = Signal(int, str, object, object)
    _resegment = Signal(object)

    def __init__(self, loaded_model=None, parent=None) -> None:
        super().__init__(parent)
        self._latest = LatestRequest()
        self._next_id = 0
        self._pending: set[int] = set()
        self.model_info = None
        self.model_error = ""
        self._worker = SegmentWorker(self._latest, loaded_model)
        self._thread = start_thread(self._worker, "adaqat-model")
        self._load.connect(self._worker.load_model)
        self._run.connect(self._worker.run)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.model_ready.connect(self._on_model_ready)
        self._worker.model_failed.connect(self._on_model_failed)
        self._resegment.connect(self._worker.resegment)
        self._worker.resegment_progress.connect(self.resegment_progress)
        self._worker.resegment_done.connect(self.resegment_done)

    @property
    def last_run_thread(self) -> int | None:
        """Python thread id that ran the model last (never the GUI thread)."""
        return self._worker.last_run_thread

    @property
    def loaded_model(self):
        """The loaded model (core LoadedModel) once ``model_ready`` has fired; shared read-only with other threads."""
        return self._worker.loaded

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def load_model(self, name: str, device: str, threads: int) -> None:
        self.model_info = None
        self.model_error = ""
        self._load.emit(name, device, int(threads))

    def segment(self, key: str, gray: np.ndarray) -> int:
        """Automatic mask for a newly shown image; anything still queued becomes stale."""
        return self._submit(key, gray, None)

    def prompt(self, key: str, gray: np.ndarray, box=None, points=None, labels=None) -> int:
        prompts: dict = {}
        if box is not None:
            prompts["box"] = tuple(float(v) for v in box)
        if points:
            prompts["points"] = np.asarray(points, dtype=np.float32).reshape(-1, 2)
            prompts["point_labels"] = np.asarray(labels, dtype=np.int64)
        return self._submit(key, gray, prompts)

    def resegment_unreviewed(self, store) -> None:
        """Queue a re-run of the current model on every unreviewed image (after the model loads)."""
        self._resegment.emit(store)

    def cancel_resegment(self) -> None:
        self._worker.cancel_resegment.set()

    def cancel_pending(self) -> None:
        """Make everything queued stale (the user closed or switched the image)."""
        self._next_id += 1
        self._latest.value = self._next_id
        if self._pending:
            self._pending.clear()
            self.busy_changed.emit(False)

    def shutdown(self) -> None:
        self.cancel_resegment()
        self.cancel_pending()
        stop_thread(self._thread)

    def _submit(self, key: str, gray: np.ndarray, prompts: dict | None) -> int:
        self._next_id += 1
        request = self._next_id
        self._latest.value = request  # older queued requests are skipped by the worker
        was_busy = self.busy
        self._pending = {request}
        if not was_busy:
            self.busy_changed.emit(True)
        self._run.emit(request, key, gray, prompts)
        return request

    @Slot(int, str, object, str)
    def _on_finished(self, request: int, key: str, result, kind: str) -> None:
        if request in self._pending:
            self._pending.discard(request)
            self.busy_changed.emit(False)
            self.result.emit(key, result, kind)

    @Slot(int, str, str)
    def _on_failed(self, request: int, key: str, message: str) -> None:
        if request in self._pending:
            self._pending.discard(request)
            self.busy_changed.emit(False)
            self.error.emit(key, message)

    @Slot(object)
    def _on_model_ready(self, info) -> None:
        self.model_info = info
        self.model_ready.emit(info)

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.model_error = message
        self.model_failed.emit(message)
