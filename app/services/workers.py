"""Background work: opening files and running the model, each on its own QThread.

Why two threads: the model (seconds per image on a CPU) must never run on the GUI thread, and file
reading must not wait behind it. Each worker is a QObject moved to its thread; the GUI talks to it
only through queued signals, and results come back the same way tagged with a request id so the
GUI can drop answers that arrive after the user has moved on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from core.io import StudyReadError, load_study
from core.io.discover import find_study_files
from core.io.display import default_presets, render
from core.io.model_input import model_gray
from core.io.study import Study, WindowPreset
from core.store.image_key import pixel_digest

log = logging.getLogger(__name__)
STUDY_CACHE_SIZE = 4


def _file_identity(path: Path) -> tuple:
    """Path plus what changes when the file is rewritten or replaced (inode, size, mtime)."""
    try:
        info = os.stat(path)
    except OSError:
        return (str(path),)
    return (str(path), info.st_ino, info.st_size, info.st_mtime_ns)


@dataclass
class OpenedStudy:
    """Everything the GUI needs to show one study, computed off the GUI thread."""

    path: Path
    study: Study
    display: np.ndarray  # uint8, file default window
    gray: np.ndarray  # uint8 model input
    presets: list[WindowPreset]


class LatestRequest:
    """A counter shared with a worker: requests older than ``value`` are stale and skipped."""

    def __init__(self) -> None:
        self.value = 0


class StudyWorker(QObject):
    """Scans folders and opens studies (pydicom, decoders, VOI) in the I/O thread."""

    scanned = Signal(int, object)  # batch id, list[Path]
    indexed = Signal(int, object)  # batch id, Study (header info for the worklist)
    problem = Signal(int, str, str)  # batch id, path, one-line reason
    batch_done = Signal(int)
    opened = Signal(int, object)  # request id, OpenedStudy
    open_failed = Signal(int, str, str)  # request id, path, one-line reason

    def __init__(self, latest_open: LatestRequest) -> None:
        super().__init__()
        self._latest_open = latest_open
        self._cache: OrderedDict[tuple, Study] = OrderedDict()

    @Slot(int, object)
    def scan(self, batch: int, paths: list[str]) -> None:
        """Find study files under ``paths`` and read each once, so unreadable ones show up at import."""
        try:
            files = find_study_files(paths)
        except OSError as error:  # a folder vanished mid-walk
            self.problem.emit(batch, ", ".join(map(str, paths)), f"could not list: {error.strerror or error}")
            files = []
        missing = [p for p in paths if not Path(p).exists()]
        for path in missing:
            self.problem.emit(batch, str(path), f"{path}: no such file or folder")
        self.scanned.emit(batch, files)
        for path in files:
            try:
                self.indexed.emit(batch, self._load(path))
            except StudyReadError as error:
                self.problem.emit(batch, str(path), str(error))
        self.batch_done.emit(batch)

    @Slot(int, object)
    def open(self, request: int, path: str) -> None:
        if request < self._latest_open.value:
            return
        try:
            study = self._load(Path(path))
            opened = OpenedStudy(Path(path), study, render(study), model_gray(study), default_presets(study))
        except StudyReadError as error:
            self.open_failed.emit(request, path, str(error))
            return
        self.opened.emit(request, opened)

    def _load(self, path: Path) -> Study:
        key = _file_identity(path)  # a file replaced under the same name is decoded again
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        study = load_study(path)
        pixel_digest(study)  # the store's content key, hashed here rather than on the GUI thread
        self._cache[key] = study
        while len(self._cache) > STUDY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return study


class SegmentWorker(QObject):
    """Owns the model and the Predictor (embedding cache) in the model thread."""

    model_ready = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    finished = Signal(int, str, object, str)  # request id, image key, SegmentationResult, kind
    failed = Signal(int, str, str)  # request id, image key, message
    resegment_progress = Signal(int, int)  # done, total
    resegment_done = Signal(object)  # core.segment.resegment.ResegmentReport

    def __init__(self, latest: LatestRequest, loaded=None) -> None:
        super().__init__()
        self._latest = latest
        self._loaded = loaded
        self._predictor = None
        self.loaded = None
        self._encoded_key: str | None = None
        self.last_run_thread: int | None = None  # thread id of the last model run (tests check it is not the GUI's)
        self.cancel_resegment = threading.Event()  # set from the GUI thread

    @Slot(str, str, int)
    def load_model(self, name: str, device: str, threads: int) -> None:
        """Load (or reuse the injected) model; a failure is reported, never raised into Qt."""
        try:
            from core.models.loading import load_model
            from core.compute import cuda_available, set_threads
            from core.segment.predictor import Predictor

            if threads > 0:
                set_threads(threads)  # torch's and ONNX Runtime's (torch is loaded only for a torch model)
            if device == "cuda" and not cuda_available():
                device = "cpu"
            loaded = self._loaded if self._loaded is not None else load_model(name, device)
            self._predictor = Predictor(loaded, device=device)
            self.loaded = loaded  # shared, read-only, with the background mask pass
            self._encoded_key = None
        except Exception as error:  # ModelLoadError, OSError, torch errors: all shown as one line
            log.warning("model load failed: %s", type(error).__name__)
            self._predictor = None
            self.model_failed.emit(" ".join(str(error).split()) or type(error).__name__)
            return
        self.model_ready.emit(loaded.info)

    @Slot(int, str, object, object)
    def run(self, request: int, key: str, gray: np.ndarray, prompts: dict | None) -> None:
        """Automatic mask (``prompts`` None) or a prompted one; encodes only when the image changed."""
        if request < self._latest.value:
            return
        if self._predictor is None:
            self.failed.emit(request, key, "no model loaded (see Settings > Model)")
            return
        self.last_run_thread = threading.get_ident()
        try:
            if self._encoded_key != key or not self._predictor.has_image:
                self._encoded_key = None
                self._predictor.set_image(gray)
                self._encoded_key = key
            if request < self._latest.value:
                return
            result = self._predictor.predict(**(prompts or {}), assess=prompts is None)  # confidence with every automatic mask
        except Exception as error:  # keep the thread alive whatever the model does
            log.warning("segmentation failed: %s", type(error).__name__)
            self.failed.emit(request, key, " ".join(str(error).split()) or type(error).__name__)
            return
        self.finished.emit(request, key, result, "auto" if prompts is None else "prompt")


    @Slot(object)
    def resegment(self, store) -> None:
        """Redraw every unreviewed image's mask with the current model (reviewed ones are never touched)."""
        from core.segment.resegment import ResegmentReport, resegment_unreviewed

        self.cancel_resegment.clear()
        if self._predictor is None:
            self.resegment_done.emit(ResegmentReport(failed=["no model loaded (see Settings > Model)"]))
            return
        self.last_run_thread = threading.get_ident()
        self._encoded_key = None  # the predictor's cached embedding will belong to another image
        try:
            report = resegment_unreviewed(store, self._predictor, progress=self.resegment_progress.emit,
                                          cancelled=self.cancel_resegment.is_set)
        except Exception as error:  # keep the thread alive; the GUI shows one line
            log.warning("re-segmentation failed: %s", type(error).__name__)
            report = ResegmentReport(failed=[" ".join(str(error).split()) or type(error).__name__])
        self.resegment_done.emit(report)


def start_thread(worker: QObject, name: str) -> QThread:
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.start()
    return thread


def stop_thread(thread: QThread) -> None:
    """Quit and join: the call in progress (one model call or file read) finishes first. A time limit
    would let Qt destroy a running thread, which aborts the process at exit."""
    thread.quit()
    thread.wait()
