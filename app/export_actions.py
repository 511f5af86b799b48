"""Export menu handlers: ask where, call core.export, report in one line. No export logic lives here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from core.export import ExportError, export_dicom_seg, export_mask_png, export_review_csv
from core.review.quality_flags import MaskQuality
from core.store import StoreError

from .editing.document import ImageDocument


class ExportActions:
    def __init__(self, parent: QWidget, document: ImageDocument, notify: Callable[[str], None]) -> None:
        self.parent = parent
        self.document = document
        self.notify = notify
        self.last_dir = Path.home()

    def can_export_mask(self) -> bool:
        return self.document.is_open and self.document.mask is not None

    def can_export_seg(self) -> bool:
        """DICOM SEG references its source image, so it needs a DICOM input."""
        return self.can_export_mask() and self.document.study.kind == "dicom"

    def export_png(self, path: str | Path | None = None) -> Path | None:
        if not self.can_export_mask():
            self.notify("Open an image with a mask first")
            return None
        path = path or self._ask(f"{self.document.path.stem}_mask.png", "PNG image (*.png)")
        if not path:
            return None
        return self._run(lambda: export_mask_png(self.document.mask, path), "Mask saved as")

    def export_seg(self, path: str | Path | None = None) -> Path | None:
        if not self.can_export_seg():
            self.notify("DICOM SEG export needs a DICOM image with a mask")
            return None
        path = path or self._ask(f"{self.document.path.stem}_seg.dcm", "DICOM (*.dcm)")
        if not path:
            return None
        origin = self.document.origin
        source = origin.source if origin.source in ("model", "prompt", "edit") else "edit"
        quality = self._stored_quality() if source == "model" else None
        return self._run(
            lambda: export_dicom_seg(
                self.document.path, self.document.mask, path, origin.model, self.document.reader, mask_source=source,
                quality=quality,
            ),
            "DICOM SEG written to",
        )

    def _stored_quality(self):
        """Confidence and flags of the shown automatic mask, as stored with it (None if none)."""
        store, key = self.document.store, self.document.key
        try:
            stored = None if store is None or key is None else store.latest_qualities(key).get(key)
        except StoreError:
            return None
        return None if stored is None else MaskQuality.from_stored(*stored)

    def export_csv(self, path: str | Path | None = None) -> Path | None:
        if self.document.store is None:
            self.notify("No annotation store is open")
            return None
        path = path or self._ask("review.csv", "CSV (*.csv)")
        if not path:
            return None
        return self._run(lambda: export_review_csv(self.document.store, path), "Review CSV written to")

    def _ask(self, name: str, filter_text: str) -> str:
        chosen, _ = QFileDialog.getSaveFileName(self.parent, "Export", str(self.last_dir / name), filter_text)
        if chosen:
            self.last_dir = Path(chosen).parent
        return chosen

    def _run(self, job: Callable[[], Path], done: str) -> Path | None:
        try:
            written = job()
        except (ExportError, StoreError) as error:
            self.notify(f"Export failed: {error}")
            return None
        self.notify(f"{done} {written}")
        return Path(written)
