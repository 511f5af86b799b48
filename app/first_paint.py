"""Run something once the window has painted for the first time.

Why: loading the model imports a large numerical stack in the model thread. Python threads share one
interpreter lock, so starting that import while the window is still being built and laid out delays
the first paint by seconds on a 2-core PC. The reader should see the window (and the image, which
decodes in the I/O thread meanwhile) at once; the model may arrive a moment later.

A window that is never shown (a test building one hidden) or never painted within ``fallback_ms``
still gets the callback, so nothing waits for a paint that will not come.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

FALLBACK_MS = 1500


class AfterFirstPaint(QObject):
    """Calls ``callback`` once: after ``widget``'s first paint, or at once if it is not shown."""

    def __init__(self, widget: QWidget, callback: Callable[[], None], fallback_ms: int = FALLBACK_MS) -> None:
        super().__init__(widget)
        self._widget = widget
        self._callback: Callable[[], None] | None = callback
        self.painted = False
        widget.installEventFilter(self)
        QTimer.singleShot(0, self._if_hidden)  # runs after the caller had the chance to show() the window
        QTimer.singleShot(fallback_ms, self._fire)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._widget and event.type() == QEvent.Type.Paint and not self.painted:
            self.painted = True
            QTimer.singleShot(0, self._fire)  # after this paint has reached the screen
        return False

    def fire_now(self) -> None:
        """Run the callback now if it has not run yet (something needs its result already)."""
        self._fire()

    def _if_hidden(self) -> None:
        if not self._widget.isVisible():
            self._fire()

    def _fire(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            self._widget.removeEventFilter(self)
            callback()
