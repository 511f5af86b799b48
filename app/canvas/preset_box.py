"""The toolbar's window/level preset box: filled per image, remembers the reader's last choice.

A reader who prefers the lung window wants it on every image, not the file's default each time, so
the last preset chosen here (by name: "Lung" exists on every file, "File window 1" on most DICOMs) is
applied to each newly opened image when that image offers it. After a right-drag the box names the
custom window ("Custom C 11867/W 15364") instead of going blank, so the reader can always read
what is shown and pick a preset again.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QComboBox

from .window_level import FILE_DEFAULT, WindowLevel

CUSTOM = "Custom"


class PresetBox(QObject):
    def __init__(self, combo: QComboBox, window_level: WindowLevel, recall: Callable[[], str],
                 remember: Callable[[str], None], parent=None) -> None:
        super().__init__(parent)
        self.combo = combo
        self.window_level = window_level
        self._recall = recall
        self._remember = remember
        self._names: list[str] = []
        combo.setMinimumContentsLength(max(combo.minimumContentsLength(), 22))  # a custom window's label fits
        combo.currentIndexChanged.connect(self._on_chosen)
        window_level.changed.connect(self._on_window_changed)

    def fill(self) -> str:
        """New image: its presets, with the remembered one applied if it has it. Returns the one shown."""
        self._names = self.window_level.preset_names()
        wanted = self._recall()
        index = self._names.index(wanted) if wanted in self._names else 0
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(self._names)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        if index:
            self.window_level.select(index)
        return self._names[index]

    def reset(self) -> None:
        """Back to the file's own window (the View menu's reset), remembered as the choice."""
        if self.combo.currentIndex() != 0:
            self.combo.setCurrentIndex(0)  # renders and remembers through _on_chosen
        else:
            self.window_level.select(0)
            self._remember(FILE_DEFAULT)

    def current_text(self) -> str:
        return self.combo.currentText()

    def _on_chosen(self, index: int) -> None:
        if index < 0 or index >= len(self._names):
            return  # the custom entry: it is already what is shown
        self._drop_custom()
        self.window_level.select(index)
        self._remember(self._names[index])

    def _on_window_changed(self, _text: str) -> None:
        preset = self.window_level.preset
        if preset is None or preset.name != CUSTOM:
            return
        label = f"{CUSTOM} C {preset.center:.0f}/W {preset.width:.0f}"
        self.combo.blockSignals(True)
        if self.combo.count() == len(self._names):
            self.combo.addItem(label)
        else:
            self.combo.setItemText(len(self._names), label)
        self.combo.setCurrentIndex(len(self._names))
        self.combo.blockSignals(False)

    def _drop_custom(self) -> None:
        if self.combo.count() > len(self._names):
            self.combo.blockSignals(True)
            self.combo.removeItem(len(self._names))
            self.combo.blockSignals(False)
