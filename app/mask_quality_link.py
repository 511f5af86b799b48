"""Keeps the worklist's confidence column and the review panel's flags in step with the store.

The store holds each automatic mask's confidence and flags with the revision they describe; what the
window shows is always read back from there, so a mask the store refused (a reader's edit kept) never
shows the quality of the mask that was not saved, and an edited mask shows none.
"""

from __future__ import annotations

from PySide6.QtCore import QObject

from core.review.quality_flags import MaskQuality
from core.store import StoreError


class MaskQualityLink(QObject):
    def __init__(self, window) -> None:
        super().__init__(window)
        self._window = window
        window.precompute.computed.connect(lambda key, _quality: self.refresh(key))
        window.segmentation.result.connect(lambda key, _result, _kind: self.refresh(key))
        window.document.edited.connect(self.refresh)

    def current(self, key: str) -> MaskQuality | None:
        try:
            stored = self._window.store.latest_qualities(key).get(key)
        except StoreError:
            return None
        return None if stored is None else MaskQuality.from_stored(*stored)

    def refresh(self, key: str) -> None:
        quality = self.current(key)
        self._window.worklist.set_quality(key, quality)
        if key == self._window.document.key:
            self._window.review.show_quality(quality)

    def refresh_all(self) -> None:
        try:
            stored = self._window.store.latest_qualities()
        except StoreError:
            return
        for key in self._window.worklist.keys():
            found = stored.get(key)
            self._window.worklist.set_quality(key, None if found is None else MaskQuality.from_stored(*found))
