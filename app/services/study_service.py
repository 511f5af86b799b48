"""The GUI-side face of the I/O thread: import files/folders and open studies without blocking."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from .workers import LatestRequest, StudyWorker, start_thread, stop_thread


class StudyService(QObject):
    file_indexed = Signal(int, object)  # batch id, Study (its header fields feed the worklist)
    problem = Signal(str, str)  # path, one-line reason
    import_finished = Signal(int)  # batch id
    opened = Signal(object)  # OpenedStudy
    open_failed = Signal(str, str)  # path, one-line reason
    files_found = Signal(int, int)  # batch id, how many files will be read

    _scan = Signal(int, object)
    _open = Signal(int, object)  # a Python str: a QString would mangle a non-UTF-8 name's escaped bytes

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._latest_open = LatestRequest()
        self._batch = 0
        self._request = 0
        self.pending_batches: set[int] = set()
        self._worker = StudyWorker(self._latest_open)
        self._thread = start_thread(self._worker, "adaqat-io")
        self._scan.connect(self._worker.scan)
        self._open.connect(self._worker.open)
        # Bound methods / signals of this GUI-thread object as receivers: the calls are queued into the
        # GUI thread (a lambda would have no receiver thread and could run in the worker's).
        self._worker.scanned.connect(self._on_scanned)
        self._worker.indexed.connect(self.file_indexed)
        self._worker.problem.connect(self._on_problem)
        self._worker.batch_done.connect(self._on_batch_done)
        self._worker.opened.connect(self._on_opened)
        self._worker.open_failed.connect(self._on_open_failed)

    def import_paths(self, paths: list[str]) -> int:
        self._batch += 1
        self.pending_batches.add(self._batch)
        self._scan.emit(self._batch, [str(p) for p in paths])
        return self._batch

    def open(self, path: str) -> None:
        """Open one study for display; an earlier open still queued is skipped."""
        self._request += 1
        self._latest_open.value = self._request
        self._open.emit(self._request, str(path))

    def shutdown(self) -> None:
        self._latest_open.value = self._request + 1
        stop_thread(self._thread)

    @Slot(int, object)
    def _on_scanned(self, batch: int, files: list) -> None:
        self.files_found.emit(batch, len(files))

    @Slot(int, str, str)
    def _on_problem(self, _batch: int, path: str, reason: str) -> None:
        self.problem.emit(path, reason)

    @Slot(int)
    def _on_batch_done(self, batch: int) -> None:
        self.pending_batches.discard(batch)
        self.import_finished.emit(batch)

    @Slot(int, object)
    def _on_opened(self, request: int, opened) -> None:
        if request == self._request:
            self.opened.emit(opened)

    @Slot(int, str, str)
    def _on_open_failed(self, request: int, path: str, reason: str) -> None:
        if request == self._request:
            self.open_failed.emit(path, reason)
