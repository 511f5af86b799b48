"""The open image and its current mask, and the rule that every completed change is saved at once.

Saving on every change (not on Ctrl+S) means a crash loses at most the edit in progress; the store
writes masks atomically, so the saved state is always a complete mask. A failed save is kept as
``dirty`` and retried by Ctrl+S or the next change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from core.io.study import Study, WindowPreset
from core.models.artifact import ModelInfo
from core.store import AnnotationStore, MaskRevision, StoreConflict, StoreError

from .undo_commands import MaskEditCommand

STORE_SOURCE = {"model": "model", "prompt": "prompt", "edit": "edit", "undo": "edit", "redo": "edit"}


@dataclass
class MaskOrigin:
    """Where the shown mask came from, for the overlay panel and exports."""

    source: str  # "model", "prompt", "edit" (latest store source) or "" (no mask)
    model: ModelInfo | None  # the model behind it (for edits: the model of the edited mask)
    from_store: bool = False


class ImageDocument(QObject):
    mask_changed = Signal()
    edited = Signal(str)  # image key: a person changed its mask (edit, prompt, undo, redo)
    save_failed = Signal(str)
    saved = Signal()
    conflict = Signal(str)  # another reader changed the image since it was loaded; the message says who

    def __init__(self, store: AnnotationStore | None, reader: str, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self.reader = reader
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(100)
        self.key: str | None = None
        self.path: Path | None = None
        self.study: Study | None = None
        self.gray: np.ndarray | None = None
        self.presets: list[WindowPreset] = []
        self.mask: np.ndarray | None = None
        self.origin = MaskOrigin("", None)
        self.dirty = False
        self.base_version: int | None = None  # the store's version of the image this reader works on

    # -- image ----------------------------------------------------------------------------------
    def load(self, key: str, study: Study, gray: np.ndarray, presets: list[WindowPreset]) -> None:
        """Make ``study`` the open image; its stored mask (if any) becomes the current mask."""
        self.undo_stack.clear()
        self.key, self.path, self.study, self.gray, self.presets = key, study.path, study, gray, presets
        self.mask = None
        self.origin = MaskOrigin("", None)
        self.dirty = False
        self.base_version = self.store.image_version(key) if self.store is not None else None

    def load_stored_mask(self) -> bool:
        """Show the store's latest revision; False when the image has no mask yet."""
        if self.store is None or self.key is None:
            return False
        self.base_version = self.store.image_version(self.key)  # read first: a later write can only conflict
        revision = self.store.latest_revision(self.key)
        if revision is None:
            return False
        mask = self.store.load_revision_mask(revision)
        if mask.shape != (self.study.height, self.study.width):
            return False
        self.mask = mask
        self.origin = MaskOrigin(revision.source, model_of_revision(revision), from_store=True)
        self.mask_changed.emit()
        return True

    def close(self) -> None:
        self.undo_stack.clear()
        self.key = self.path = self.study = self.gray = self.mask = None
        self.presets = []
        self.origin = MaskOrigin("", None)

    @property
    def is_open(self) -> bool:
        return self.study is not None

    def mask_or_empty(self) -> np.ndarray | None:
        """The mask edits start from: the current one, or an empty one if the model has not answered."""
        if self.study is None:
            return None
        if self.mask is None:
            return np.zeros((self.study.height, self.study.width), dtype=np.uint8)
        return self.mask

    # -- changes --------------------------------------------------------------------------------
    def accept_model_mask(self, mask: np.ndarray, model: ModelInfo, quality=None) -> bool:
        """An automatic result: saved only if nobody has worked on the image (store rule).

        Returns False (and keeps what is shown) when a person's mask or review already exists.
        """
        saved = True
        if self.store is not None and self.key is not None:
            try:
                saved = self.store.save_model_mask_if_unreviewed(self.key, mask, model, self.reader, quality=quality)
                if saved:
                    self.base_version = self.store.own_version(self.key)
            except StoreError as error:
                self.save_failed.emit(str(error))
                self.dirty = True
        if not saved and self.mask is not None:
            return False
        if not saved and self.load_stored_mask():
            return False
        self.mask = mask
        self.origin = MaskOrigin("model", model)
        self.mask_changed.emit()
        return True

    def edit(self, new_mask: np.ndarray, text: str, source: str = "edit", model: ModelInfo | None = None) -> bool:
        """A completed edit or prompt result, as one undoable step; False if nothing changed."""
        before = self.mask_or_empty()
        if before is None or new_mask.shape != before.shape or np.array_equal(before, new_mask):
            return False
        origin_before = self.origin if self.mask is not None else MaskOrigin("", None)
        if source == "prompt" and model is not None:
            origin_after = MaskOrigin("prompt", model)
        else:
            origin_after = MaskOrigin("edit", self.origin.model)
        self.undo_stack.push(MaskEditCommand(self._current, self._apply, before, new_mask, text, source,
                                             (origin_before, origin_after)))
        return True

    def save_now(self) -> bool:
        """Retry a failed save (Ctrl+S); True when everything shown is in the store."""
        if not self.dirty or self.mask is None:
            return True
        if not self._save(self.mask, self.origin.source or "edit"):
            return False
        if self.key is not None and self.origin.source in ("edit", "prompt"):
            self.edited.emit(self.key)  # the review change that failed with the save (full disk) is made now
        return True

    def reload_from_store(self) -> bool:
        """After a conflict: drop this reader's unsaved change and show what is in the store now."""
        self.undo_stack.clear()
        self.dirty = False
        return self.load_stored_mask()

    def keep_both(self) -> bool:
        """After a conflict: save this reader's mask as a new revision on top of the other reader's
        (both stay in the history); the caller asks the reader which one to review."""
        if self.mask is None or self.store is None or self.key is None:
            return False
        self.base_version = None
        return self._save(self.mask, self.origin.source or "edit")

    def _current(self) -> np.ndarray:
        return self.mask_or_empty()

    def _apply(self, mask: np.ndarray, source: str, origin: MaskOrigin | None = None) -> None:
        self.mask = mask
        if origin is not None:
            self.origin = MaskOrigin(origin.source or "edit", origin.model)
        elif STORE_SOURCE.get(source, "edit") == "edit":
            self.origin = MaskOrigin("edit", self.origin.model)
        self.mask_changed.emit()
        if self._save(mask, self.origin.source) and self.key is not None:
            self.edited.emit(self.key)  # unsaved (full disk, conflict): the review follows when the save does

    def _save(self, mask: np.ndarray, source: str) -> bool:
        if self.store is None or self.key is None:
            self.dirty = True
            return False
        model = self.origin.model
        try:
            if source in ("model", "prompt") and model is None:
                source = "edit"
            self.store.save_mask(self.key, mask, source=source, reader=self.reader, model=model,
                                 base_version=self.base_version)
        except StoreConflict as error:
            self.dirty = True
            self.conflict.emit(str(error))
            return False
        except StoreError as error:
            self.dirty = True
            self.save_failed.emit(str(error))
            return False
        self.base_version = self.store.own_version(self.key)
        self.dirty = False
        self.saved.emit()
        return True


def model_of_revision(revision: MaskRevision) -> ModelInfo | None:
    """The ModelInfo behind a stored mask: its own model, else the model its first mask came from."""
    for prefix in ("model_", "first_model_"):
        name = getattr(revision, f"{prefix}name")
        if name:
            version, precision, sha256 = (getattr(revision, f"{prefix}{what}")
                                          for what in ("version", "precision", "weights_sha256"))
            return ModelInfo(name, version or "", "", precision or "fp32", sha256 or "")
    return None
