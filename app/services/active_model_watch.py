"""Notice ``adaqat models activate`` / ``rollback`` run while the viewer is open.

The active model is one small file (``active.json``, core/models/catalog.py) that the command
line rewrites. A running viewer would otherwise keep segmenting with, and naming, the model it
started with. A cheap stat every two seconds sees the file change; only then is it read.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, QTimer, Signal

from core.models import catalog

POLL_MS = 2000


class ActiveModelWatch(QObject):
    changed = Signal(str)  # the newly active model's name or folder

    def __init__(self, parent=None, interval_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self._stamp = self._file_stamp()
        self._active = catalog.active_model()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def acknowledge(self) -> None:
        """The viewer made this change itself (Models window): nothing to follow."""
        self._stamp = self._file_stamp()
        self._active = catalog.active_model()

    def check(self) -> bool:
        """Emit ``changed`` if another process changed the active model; True when it did."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        now = catalog.active_model()
        if now == self._active:
            return False
        self._active = now
        self.changed.emit(now)
        return True

    def stop(self) -> None:
        self._timer.stop()

    @staticmethod
    def _file_stamp() -> tuple[int, int, int] | None:
        try:
            info = os.stat(catalog.user_models_dir() / catalog.ACTIVE_FILE)
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino
