"""Window/level state of the shown image: presets, right-drag adjustment, inversion.

Rendering (core.io.display.render) happens only when the window changes, never on pan or zoom,
and drags are throttled to one render per ``THROTTLE_MS`` with the latest position, so a fast drag
on a 3000x3000 radiograph does not queue renders behind the mouse.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from core.io.display import render
from core.io.study import Study, WindowPreset

from .qimage import gray_to_qimage

THROTTLE_MS = 40
DRAG_STEPS = 600  # dragging the full width of this many pixels sweeps the full data range
FILE_DEFAULT = "File default"


class WindowLevel(QObject):
    rendered = Signal(QImage)
    changed = Signal(str)  # text describing the window, for the status bar

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.study: Study | None = None
        self.presets: list[WindowPreset] = []
        self.preset: WindowPreset | None = None  # None = the file's default VOI
        self.user_invert = False
        self._drag_base: WindowPreset | None = None
        self._drag_step = 1.0
        self._pending = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self._render_now)

    def set_study(self, study: Study | None, presets: list[WindowPreset]) -> None:
        """New image: back to the file default; the caller shows the already rendered default."""
        self.study = study
        self.presets = list(presets)
        self.preset = None
        self.user_invert = False
        self.changed.emit(self.describe())

    def preset_names(self) -> list[str]:
        return [FILE_DEFAULT] + [p.name for p in self.presets]

    def select(self, index: int) -> None:
        """0 = file default, i = presets[i-1]."""
        self.preset = None if index <= 0 or index > len(self.presets) else self.presets[index - 1]
        self._render_now()

    def set_invert(self, on: bool) -> None:
        self.user_invert = bool(on)
        self._render_now()

    def begin_drag(self) -> None:
        if self.study is None:
            return
        self._drag_base = self.preset or self._default_window()
        full = next((p for p in self.presets if p.name == "Full range"), None)
        span = full.width if full else max(self._drag_base.width, 1.0)
        self._drag_step = max(span / DRAG_STEPS, 1e-6)

    def drag(self, dx: int, dy: int) -> None:
        """Right-drag: horizontal = width, vertical = level (drag up = brighter, as in most PACS).

        Brighter means brighter on screen: on an inverted display (MONOCHROME1, or Invert on) a lower
        level darkens the picture, so the level moves the other way there.
        """
        base = self._drag_base
        if self.study is None or base is None:
            return
        shown_inverted = self.study.inverted != self.user_invert
        width = max(1e-3, base.width + dx * self._drag_step)
        center = base.center + (-dy if shown_inverted else dy) * self._drag_step
        self.preset = WindowPreset("Custom", center, width, base.function)
        self._pending = True
        if not self._timer.isActive():
            self._timer.start()

    def end_drag(self) -> None:
        self._drag_base = None
        if self._pending:
            self._timer.stop()
            self._render_now()

    def describe(self) -> str:
        if self.study is None:
            return ""
        if self.preset is None:
            text = FILE_DEFAULT
        else:
            text = f"{self.preset.name}: C {self.preset.center:.0f} / W {self.preset.width:.0f}"
        return text + (" · inverted" if self.user_invert else "")

    def _default_window(self) -> WindowPreset:
        if self.study is not None and self.study.window_presets:
            return self.study.window_presets[0]
        full = next((p for p in self.presets if p.name == "Full range"), None)
        return full or WindowPreset("Full range", 128.0, 256.0)

    def _render_now(self) -> None:
        self._pending = False
        if self.study is None:
            return
        invert = self.study.inverted != self.user_invert
        gray = render(self.study, self.preset, invert=invert)
        self.rendered.emit(gray_to_qimage(gray))
        self.changed.emit(self.describe())
