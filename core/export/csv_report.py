"""The review report: one CSV row per image with its status, reader, note and lung measurements.

Lung area is given for both lungs and per patient side (``core.review.lung_sides``); ``sides`` says
whether the side came from the file's Patient Orientation or was assumed. Each area column holds one
unit, so a spreadsheet can sum or plot a column without mixing cm² and pixels: the ``*_cm2`` columns
are filled when the pixel spacing is known (empty otherwise), the ``*_px`` columns always, and
``area_unit`` says which one is the measurement to report for that image ("cm²", else "px").

No patient identifiers: images are named by display name (the file name) and image key only.
Written as UTF-8 with a byte-order mark (so spreadsheet programs show "cm²" correctly), atomically.
Cells that a spreadsheet would run as a formula (=, +, -, @) are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.atomic import atomic_write_bytes
from .errors import ExportError, write_failure
from ..review.measurements import CSV_COLUMNS as MEASUREMENT_COLUMNS
from ..review.measurements import LungMeasurements, csv_cells, measure, measure_counts

if TYPE_CHECKING:
    from ..store.annotation_store import AnnotationStore

COLUMNS = (
    "display_name",
    "image_key",
    "status",
    "reader",
    "note",
    "updated_at",
    *MEASUREMENT_COLUMNS,  # lung areas (cm² and px, both lungs and each side), area_unit, sides, lung_fraction
    "model",
    "confidence",
    "quality_flags",
)


def review_rows(store: AnnotationStore) -> list[dict[str, str]]:
    """The report's rows, in display order. ``model`` is the model behind the current mask: the
    revision's own model for model/prompt masks, else the model the first mask came from."""
    rows = []
    qualities = store.latest_qualities()  # confidence and flags of automatic masks (core.review.quality_flags)
    for image in store.list_images():
        revision = store.latest_revision(image.key) if image.has_mask else None
        measured = _measure(store, revision, image) if revision is not None else None
        model = (revision.model_label or revision.first_model_label) if revision is not None else ""
        rows.append(
            {
                "display_name": image.display_name,
                "image_key": image.key,
                "status": image.status,
                "reader": image.reader,
                "note": image.note,
                "updated_at": image.updated_at,
                **csv_cells(measured),
                "model": model,
                **_quality_cells(qualities.get(image.key)),
            }
        )
    return rows


def _quality_cells(stored: tuple[float, str] | None) -> dict[str, str]:
    """The current mask's confidence and its flags ("; "-separated), empty for a reader's own mask."""
    if stored is None:
        return {"confidence": "", "quality_flags": ""}
    from ..review.quality_flags import MaskQuality

    quality = MaskQuality.from_stored(*stored)
    return {"confidence": f"{quality.confidence:.3f}", "quality_flags": "; ".join(f.text for f in quality.flags)}


def _measure(store: AnnotationStore, revision, image) -> LungMeasurements:
    """The revision's mask measured; from its stored pixel count alone (no sides) when the file can't be read."""
    from ..io.orientation import read_patient_orientation
    from ..store.errors import StoreError

    try:
        mask = store.load_revision_mask(revision)
    except (StoreError, OSError, ValueError):
        return measure_counts(revision.lung_pixels, revision.width * revision.height, image.spacing)
    return measure(mask, image.spacing, read_patient_orientation(image.path))


def export_review_csv(store: AnnotationStore, path: str | Path) -> Path:
    """Write the review report for every image in ``store`` to ``path``; returns the path."""
    path = Path(path)
    rows = review_rows(store)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({column: _safe_cell(value) for column, value in row.items()})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(path, text.getvalue().encode("utf-8-sig"))
    except OSError as error:
        raise write_failure(path, error) from None


def _safe_cell(value: str) -> str:
    if value and value[0] in "=+-@\t\r" and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


__all__ = ["COLUMNS", "ExportError", "export_review_csv", "review_rows"]
