"""Re-segment the images nobody has reviewed yet, after a new model is activated.

A better model should redraw the masks a reader has not looked at, and never touch the ones they
have: the store's ``save_model_mask_if_unreviewed`` refuses any image with a review or a human
revision, in the same transaction as the write. Files that no longer open are reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..io import StudyReadError, load_study
from ..io.model_input import model_gray
from ..store import AnnotationStore, StoreError


@dataclass
class ResegmentReport:
    updated: int = 0
    kept: int = 0  # reviewed or edited: left as the reader has it
    failed: list[str] = field(default_factory=list)  # one line per image that could not be redone
    cancelled: bool = False

    def summary(self) -> str:
        text = f"{self.updated} image(s) re-segmented, {self.kept} reviewed or edited image(s) kept"
        if self.failed:
            text += f", {len(self.failed)} could not be opened"
        return text + (" (stopped)" if self.cancelled else "")


def unreviewed_keys(store: AnnotationStore) -> list[str]:
    return [image.key for image in store.list_images() if image.status == "unreviewed"]


def resegment_unreviewed(store: AnnotationStore, predictor, keys: list[str] | None = None,
                         progress: Callable[[int, int], None] | None = None,
                         cancelled: Callable[[], bool] = lambda: False) -> ResegmentReport:
    """Automatic masks from ``predictor`` for ``keys`` (default: every unreviewed image)."""
    keys = unreviewed_keys(store) if keys is None else keys
    report = ResegmentReport()
    for done, key in enumerate(keys):
        if cancelled():
            report.cancelled = True
            break
        record = store.get_image(key)
        if record is None or record.status != "unreviewed":
            report.kept += 1
            continue
        try:
            predictor.set_image(model_gray(load_study(record.path)))
            result = predictor.predict(assess=True)
            saved = store.save_model_mask_if_unreviewed(key, result.mask, result.model, quality=result.quality)
        except (StudyReadError, StoreError) as error:
            report.failed.append(str(error))
            continue
        if saved:
            report.updated += 1
        else:
            report.kept += 1
        if progress is not None:
            progress(done + 1, len(keys))
    return report
