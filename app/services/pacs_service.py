"""PACS work off the GUI thread: searches and retrieves, the listener, and the outbox of results.

Each piece runs the ``core.pacs`` function on a Python thread and reports back through Qt signals,
which Qt queues to the GUI thread. Nothing here knows a widget; every failure arrives as the
one-line ``PacsError`` text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from core.export import ExportError
from core.pacs import PacsConfig, PacsError
from core.pacs.arrivals import ArrivalSegmenter
from core.pacs.listener import StorageListener
from core.pacs.outbox import FlushReport, Outbox, OutboxRetrier
from core.pacs.results import queue_results


class PacsJob(QObject):
    """One search or retrieve. ``work(cancelled, progress)`` runs on its own thread."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, work: Callable[[Callable[[], bool], Callable[[int, int], None]], object], parent=None) -> None:
        super().__init__(parent)
        self._work = work
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="adaqat-pacs-job", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout_s: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            result = self._work(self._cancel.is_set, self.progress.emit)
        except PacsError as error:
            self.failed.emit(str(error))
        except OSError as error:
            self.failed.emit(f"could not write the study folder ({error.strerror or error}); choose another in PACS settings")
        else:
            self.finished.emit(result)


class ListenerService(QObject):
    """The DICOM listener of the viewer: images are stored, segmented into the store, then announced."""

    arrived = Signal(object)  # core.pacs.arrivals.Arrival

    def __init__(self, store, predictor_factory: Callable[[], object], parent=None) -> None:
        """``store``: the AnnotationStore, or a function returning the one in use."""
        super().__init__(parent)
        self._store = store
        self._predictor_factory = predictor_factory
        self._listener: StorageListener | None = None
        self._segmenter: ArrivalSegmenter | None = None

    @property
    def running(self) -> bool:
        return self._listener is not None and self._listener.running

    @property
    def label(self) -> str:
        return self._listener.label if self._listener is not None else "listener"

    def start(self, config: PacsConfig, inbox: Path) -> str:
        """Start listening; returns '' or the one-line reason it could not."""
        self.stop()
        self._segmenter = ArrivalSegmenter(self._store, self._predictor_factory, on_done=self.arrived.emit)
        self._segmenter.start()
        self._listener = StorageListener(config, inbox, on_stored=self._segmenter.submit)
        try:
            self._listener.start()
        except PacsError as error:
            self.stop()
            return str(error)
        return ""

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._segmenter is not None:
            self._segmenter.stop()
            self._segmenter = None


class OutboxService(QObject):
    """Results waiting for the PACS: queued off the GUI thread, sent and retried by an ``OutboxRetrier``."""

    reported = Signal(str)  # one line for the status bar

    def __init__(self, folder: Path, config: Callable[[], PacsConfig], parent=None, interval_s: float = 30.0) -> None:
        super().__init__(parent)
        self.outbox = Outbox(folder)
        self._retrier = OutboxRetrier(self.outbox, config, interval_s=interval_s, on_report=self._on_report)
        self._retrier.start()
        self._jobs: list[threading.Thread] = []
        if len(self.outbox):
            self._retrier.poke()  # results left from the last session

    def send(self, source_path: Path, mask, model, reader: str, mask_source: str, spacing_mm) -> None:
        """Write the SEG and lung-area SR into the outbox (background), then try to send them."""
        def work() -> None:
            try:
                queue_results(self.outbox, source_path, mask, model, reader, mask_source=mask_source, spacing_mm=spacing_mm)
            except ExportError as error:
                self.reported.emit(f"Not sent to the PACS: {error}")
                return
            except OSError as error:
                self.reported.emit(f"Not sent to the PACS: the outbox could not be written ({error.strerror or error})")
                return
            self.reported.emit(f"{Path(source_path).name}: result queued for the PACS")
            self._retrier.poke()

        thread = threading.Thread(target=work, name="adaqat-outbox-queue", daemon=True)
        self._jobs = [t for t in self._jobs if t.is_alive()] + [thread]
        thread.start()

    def retry_now(self) -> None:
        self._retrier.poke()

    def wait_queued(self, timeout_s: float = 60.0) -> None:
        for thread in list(self._jobs):
            thread.join(timeout_s)

    def _on_report(self, report: FlushReport) -> None:
        if report.sent or report.errors:
            self.reported.emit(("Sent to the PACS: " if not report.errors else "PACS: ") + report.summary())

    def shutdown(self) -> None:
        self.wait_queued(30)
        self._retrier.stop()
        self.outbox.close()
