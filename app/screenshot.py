"""``--screenshot PATH``: wait until the first mask is on screen, save the window, quit.

Used for documentation and as an end-to-end smoke test (file -> model -> overlay) on headless
machines; a timeout or failure exits non-zero with a one-line reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

SETTLE_MS = 300


class ScreenshotTaker(QObject):
    def __init__(self, window, path: str | Path, timeout_s: float = 120.0) -> None:
        super().__init__(window)
        self.window = window
        self.path = Path(path)
        self.exit_code: int | None = None
        window.mask_shown.connect(self._on_mask_shown)
        window.open_failed_for_screenshot.connect(self._fail)
        window.segmentation.model_failed.connect(lambda message: self._fail(f"model unavailable: {message}"))
        window.segmentation.error.connect(lambda _key, message: self._fail(f"segmentation failed: {message}"))
        self._timeout = QTimer(self)
        self._timeout.setSingleShot(True)
        self._timeout.timeout.connect(lambda: self._fail(f"no mask shown within {timeout_s:.0f} s"))
        self._timeout.start(int(timeout_s * 1000))
        self._done = False

    def _on_mask_shown(self) -> None:
        if not self._done:
            self._done = True
            self._timeout.stop()
            QTimer.singleShot(SETTLE_MS, self._grab)

    def _grab(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            self._finish(1, f"screenshot: could not write {self.path}")
            return
        self._finish(0, f"screenshot: saved {self.path}")

    def _fail(self, reason: str) -> None:
        if not self._done:
            self._done = True
            self._finish(2, f"screenshot: {reason}")

    def _finish(self, code: int, message: str) -> None:
        self.exit_code = code
        print(message, file=sys.stderr if code else sys.stdout, flush=True)
        QApplication.instance().exit(code)
