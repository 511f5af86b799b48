"""Segment every image that arrives, one at a time on a worker thread, into the annotation store.

The listener's thread only stores the file and submits it here, so the PACS is never kept waiting
on the model. Each mask is saved with its confidence and quality flags, like the viewer's own
automatic masks, so the worklist's confidence column covers arrivals too. The model is loaded on first use (once), in this thread. Masks are saved with
``save_model_mask_if_unreviewed``: an image re-sent after a reader worked on it keeps the reader's
mask. A file the product does not open (damaged, not a radiograph) is reported, one line, and
skipped; one it opens with a warning (a body part that is not the chest) is segmented like in the
viewer, and the warning travels with the result.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..io import StudyReadError, load_study
from ..io.model_input import model_gray
from ..store import AnnotationStore, StoreError, image_ref

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arrival:
    path: Path
    key: str = ""  # the store's image key ('' when it failed)
    lung_fraction: float | None = None
    saved: bool = False  # False: failed, or a reader's mask was kept
    error: str = ""
    warnings: tuple[str, ...] = ()  # the loader's (e.g. "body part 'HAND' is not a chest; ... check the mask")
    confidence: float | None = None  # the mask's confidence (0-1), stored with it for the worklist
    flags: tuple[str, ...] = ()  # quality flags raised on the mask (short texts)


class ArrivalSegmenter:
    def __init__(self, store: AnnotationStore | Callable[[], AnnotationStore], predictor_factory: Callable[[], object],
                 on_done: Callable[[Arrival], None] | None = None) -> None:
        """``store`` may be a function returning the store in use (the viewer can switch stores while listening)."""
        self._store = store
        self.predictor_factory = predictor_factory
        self.on_done = on_done
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="adaqat-arrivals", daemon=True)
        self._predictor = None
        self.done = 0

    @property
    def store(self) -> AnnotationStore:
        return self._store() if callable(self._store) else self._store

    def start(self) -> None:
        self._thread.start()

    def submit(self, path: Path) -> None:
        self._queue.put(Path(path))

    def stop(self, timeout_s: float | None = 60.0) -> None:
        """Finish what was submitted, then stop (waits at most ``timeout_s``; None: until done)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout_s)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until everything submitted so far is processed (True) or the timeout passes (False)."""
        finished = threading.Event()
        waiter = threading.Thread(target=lambda: (self._queue.join(), finished.set()), daemon=True)
        waiter.start()
        return finished.wait(timeout_s)

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            try:
                if path is None:
                    return
                arrival = self.process(path)
                self.done += 1
                if self.on_done is not None:
                    self.on_done(arrival)
            except Exception as error:  # noqa: BLE001 - one bad arrival must not stop the worker
                log.warning("arrival could not be segmented (%s)", type(error).__name__)
            finally:
                self._queue.task_done()

    def process(self, path: Path) -> Arrival:
        try:
            study = load_study(path)
        except StudyReadError as error:
            return Arrival(path, error=str(error))
        store = self.store
        try:
            record = store.register_image(study)
            if self._predictor is None:
                try:
                    self._predictor = self.predictor_factory()
                except Exception as error:  # noqa: BLE001 - e.g. the viewer's model is still loading
                    return Arrival(path, record.key, error=f"{path.name}: stored, not segmented: the model is not "
                                   f"available ({error}); open it to segment it")
            self._predictor.set_image(model_gray(study))
            result = self._predictor.predict(assess=True)  # with its confidence and flags, as the worklist shows
            saved = store.save_model_mask_if_unreviewed(record.key, result.mask, result.model, quality=result.quality)
        except StoreError as error:
            return Arrival(path, error=f"{path.name}: {error}")
        log.info("arrival %s segmented (lung fraction %.3f)", image_ref(record.key), result.lung_fraction)
        quality = result.quality
        return Arrival(path, record.key, result.lung_fraction, saved, warnings=tuple(study.warnings),
                       confidence=None if quality is None else float(quality.confidence),
                       flags=() if quality is None else tuple(flag.text for flag in quality.flags))
