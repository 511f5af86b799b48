"""Masks ready before they are opened: a background pass over the worklist on a low-priority thread.

When a folder is opened, each image's automatic mask, confidence and quality flags are computed in
worklist order and saved to the store with their provenance (model name, version, weights sha256).
The user always goes first:

- one background image at a time, and only while the interactive model thread is idle, so an image
  the reader opens is segmented at once (it "jumps the queue") and leaves the queue;
- the background thread runs at the lowest OS priority; edits happen on the GUI thread and in the
  store, never waiting for it;
- a mask is saved through the store's "only if nobody has worked on it" rule, so an edit or review
  made during the pass is never overwritten.

A mask in the store is reused (nothing recomputed) when it was made by the active model (same weights
sha256); an unreviewed automatic mask of another model is recomputed. The model itself is shared with
the interactive thread (read-only inference); each thread keeps its own embedding cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from core.io import StudyReadError, load_study
from core.io.model_input import model_gray
from core.store import AnnotationStore, StoreError

log = logging.getLogger(__name__)
BACKGROUND_NICE = 10  # added to the background thread's nice value (Linux: per thread)
OPEN_HOLD_S = 0.5  # no background start right after the reader opens an image
STOPPED = "stopped"  # outcome of an image abandoned at shutdown (nothing saved)


def lower_this_thread_priority() -> None:
    """Make the calling thread yield the CPU to the GUI and the interactive model thread."""
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + BACKGROUND_NICE))
        except OSError:  # not permitted here: the cooperative queue still keeps the user first
            pass


class PrecomputeWorker(QObject):
    """Runs in the background thread: open the study, segment it, assess it, save it if allowed."""

    done = Signal(str, object, str)  # image key, MaskQuality or None, outcome: "saved", "kept" or a one-line error

    def __init__(self) -> None:
        super().__init__()
        self._predictor = None
        self._niced = False
        self.stop = threading.Event()  # set from the GUI thread at shutdown: abandon the image in progress
        self.last_run_thread: int | None = None
        self.last_outcome: str | None = None
        self._quality = None

    @Slot(object)
    def set_model(self, loaded) -> None:
        from core.segment.predictor import Predictor

        self._predictor = None if loaded is None else Predictor(loaded)

    @Slot(str, str, object)
    def run(self, key: str, path: str, store: AnnotationStore) -> None:
        if not self._niced:
            lower_this_thread_priority()
            self._niced = True
        self.last_run_thread = threading.get_ident()
        self.last_outcome = outcome = self._run(key, path, store)
        if outcome != STOPPED:  # nobody listens any more once the queue has shut down
            self.done.emit(key, self._quality, outcome)

    def _run(self, key: str, path: str, store: AnnotationStore) -> str:
        """One image, the stop flag checked between the steps (each step is one model call at most)."""
        self._quality = None
        if self._predictor is None:
            return "no model loaded"
        try:
            if self.stop.is_set():
                return STOPPED
            gray = model_gray(load_study(Path(path)))
            if self.stop.is_set():
                return STOPPED
            self._predictor.set_image(gray)
            if self.stop.is_set():
                return STOPPED
            result = self._predictor.predict(assess=True)
            if self.stop.is_set():  # the store is about to close: do not start a write
                return STOPPED
            saved = store.save_model_mask_if_unreviewed(key, result.mask, result.model, quality=result.quality)
        except (StudyReadError, StoreError) as error:
            return str(error)
        except Exception as error:  # keep the thread alive whatever the model does
            log.warning("background segmentation failed: %s", type(error).__name__)
            return " ".join(str(error).split()) or type(error).__name__
        self._quality = result.quality
        return "saved" if saved else "kept"


class PrecomputeQueue(QObject):
    """The GUI-side queue: which images still need a mask from the active model, one job at a time."""

    computed = Signal(str, object)  # image key, MaskQuality (saved to the store)
    failed = Signal(str, str)  # image key, one-line reason
    progress = Signal(int, int)  # done, total of this pass
    idle = Signal()  # the queue is empty and nothing is running

    _run = Signal(str, str, object)
    _set_model = Signal(object)

    def __init__(self, segmentation, store: AnnotationStore, parent=None) -> None:
        super().__init__(parent)
        self._segmentation = segmentation
        self.store = store
        self._queue: deque[str] = deque()
        self._in_flight: str | None = None
        self._model_sha: str | None = None
        self._loaded = None
        self._opened_key: str | None = None
        self._held_until = 0.0
        self._done = 0
        self._total = 0
        self.enabled = True
        self.order: list[str] = []  # keys in the order their masks were computed (tests, benchmarks)
        self._worker = PrecomputeWorker()
        self._thread = QThread()
        self._thread.setObjectName("adaqat-precompute")
        self._worker.moveToThread(self._thread)
        self._thread.start(QThread.Priority.IdlePriority)
        self._run.connect(self._worker.run)
        self._set_model.connect(self._worker.set_model)
        self._worker.done.connect(self._on_done)
        segmentation.busy_changed.connect(lambda busy: None if busy else self._dispatch())
        app = QCoreApplication.instance()
        if app is not None:  # also when the event loop ends without the window being closed
            app.aboutToQuit.connect(self.shutdown)

    @property
    def busy(self) -> bool:
        return self._in_flight is not None or bool(self._queue)

    @property
    def in_flight(self) -> str | None:
        return self._in_flight

    def pending(self) -> list[str]:
        return list(self._queue)

    def set_model(self, loaded, info) -> None:
        """The active model changed (or loaded): masks of other models become stale."""
        if loaded is self._loaded:
            return
        self._loaded = loaded
        self._model_sha = None if info is None else info.weights_sha256
        self._set_model.emit(loaded)
        self._dispatch()

    def set_store(self, store: AnnotationStore) -> None:
        self._queue.clear()
        self.store = store

    def enqueue(self, keys) -> None:
        """Add images in worklist order (already queued ones keep their place)."""
        for key in keys:
            if key not in self._queue and key != self._in_flight and key != self._opened_key:
                self._queue.append(key)
                self._total += 1
        self._dispatch()

    def opened(self, key: str) -> None:
        """The reader opened ``key``: the interactive thread segments it now, so it leaves the queue.

        No background image starts for ``OPEN_HOLD_S`` (the study is being decoded; the interactive
        request that follows then holds the queue until it is answered).
        """
        self._opened_key = key
        self._held_until = time.monotonic() + OPEN_HOLD_S
        QTimer.singleShot(int(OPEN_HOLD_S * 1000) + 10, self._dispatch)
        try:
            self._queue.remove(key)
            self._done += 1
        except ValueError:
            pass

    def needs_mask(self, key: str) -> bool:
        """True when ``key`` has no mask from the active model and nobody has worked on it."""
        record = self.store.get_image(key)
        if record is None or record.status != "unreviewed":
            return False
        revision = self.store.latest_revision(key)
        if revision is None:
            return True
        if revision.source != "model":
            return False  # a person's mask (edit or prompt) is never redone
        return self._model_sha is not None and revision.model_weights_sha256 != self._model_sha

    def is_stale(self, key: str) -> bool:
        """An unreviewed automatic mask made by another model than the active one (redo it when shown)."""
        if self._model_sha is None:
            return False
        revision = self.store.latest_revision(key)
        return revision is not None and revision.source == "model" and self.needs_mask(key)

    @property
    def settled(self) -> bool:
        """The active model is known and the pass it started is over (nothing queued, nothing running)."""
        return self._model_sha is not None and not self.busy

    @property
    def stopped(self) -> bool:
        return self._thread.isFinished()

    def shutdown(self) -> None:
        """Stop the pass and join its thread before the store closes (idempotent).

        The image in progress is abandoned at its next step, so the join waits for one model call at
        most. It waits as long as that call takes: a QThread object destroyed while its thread still runs
        aborts the whole process at exit, and a mask half-way into the store must not race its closing.
        """
        self.enabled = False
        self._queue.clear()
        self._worker.stop.set()
        if self._thread.isFinished():
            return
        self._thread.quit()
        waited = 0
        while not self._thread.wait(1000):
            waited += 1
            if waited == 5:
                log.info("waiting for the background mask in progress to stop")
        self._in_flight = None

    def _dispatch(self) -> None:
        if not self.enabled or self._in_flight is not None or self._model_sha is None or self.store.closed:
            return
        if self._segmentation.busy or time.monotonic() < self._held_until:  # the reader's image first
            return
        while self._queue:
            key = self._queue.popleft()
            try:
                needed = self.needs_mask(key)
                record = self.store.get_image(key) if needed else None
            except StoreError as error:
                self.failed.emit(key, str(error))
                continue
            if not needed or record is None:
                self._step()
                continue
            self._in_flight = key
            self._run.emit(key, str(record.path), self.store)
            return
        self.idle.emit()

    def _step(self) -> None:
        self._done += 1
        self.progress.emit(min(self._done, self._total), self._total)

    @Slot(str, object, str)
    def _on_done(self, key: str, quality, outcome: str) -> None:
        self._in_flight = None
        self.order.append(key)
        self._step()
        if outcome == "saved" and quality is not None:
            self.computed.emit(key, quality)
        elif outcome not in ("saved", "kept"):
            self.failed.emit(key, outcome)
        self._dispatch()
