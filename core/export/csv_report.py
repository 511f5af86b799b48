"""The review report: one CSV row per image with its status, reader, note and lung measurements.

Lung area is given for both lungs and per patient side (``core.review.lung_sides``); ``sides`` says
whether the side came from the file's Patient Orientation or was assumed.

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
from .measurements import UNIT_CM2, area_from_pixel_count

if TYPE_CHECKING:
    from ..store.annotation_store import AnnotationStore

COLUMNS = (
    "display_name",
    "image_key",
    "status",
    "reader",
    "note",
    "updated_at",
    "lung_area",
    "lung_area_right",
    "lung_area_left",
    "area_unit",
    "sides",
    "lung_fraction",
    "model",
)


def review_rows(store: AnnotationStore) -> list[dict[str, str]]:
    """The report's rows, in display order. ``model`` is the model behind the current mask: the
    revision's own model for model/prompt masks, else the model the first mask came from."""
    rows = []
    for image in store.list_images():
        revision = store.latest_revision(image.key) if image.has_mask else None
        area = right = left = unit = sides = fraction = model = ""
        if revision is not None:
            value, unit = area_from_pixel_count(revision.lung_pixels, image.spacing)
            area = _area_text(value, unit)
            right, left, sides = _side_areas(store, revision, image)
            total = revision.width * revision.height
            fraction = f"{revision.lung_pixels / total:.4f}" if total else ""
            model = revision.model_label or revision.first_model_label
        rows.append(
            {
                "display_name": image.display_name,
                "image_key": image.key,
                "status": image.status,
                "reader": image.reader,
                "note": image.note,
                "updated_at": image.updated_at,
                "lung_area": area,
                "lung_area_right": right,
                "lung_area_left": left,
                "area_unit": unit,
                "sides": sides,
                "lung_fraction": fraction,
                "model": model,
            }
        )
    return rows


def _area_text(value: float, unit: str) -> str:
    return f"{value:.2f}" if unit == UNIT_CM2 else str(int(value))


def _side_areas(store: AnnotationStore, revision, image) -> tuple[str, str, str]:
    """(right, left, how the sides were known); empty when the mask file cannot be read."""
    from ..io.orientation import read_patient_orientation
    from ..review.lung_sides import pixels_per_side, side_layout
    from ..store.errors import StoreError

    try:
        mask = store.load_revision_mask(revision)
    except (StoreError, OSError, ValueError):
        return "", "", ""
    layout = side_layout(read_patient_orientation(image.path))
    sides = pixels_per_side(mask, layout)
    right = _area_text(*area_from_pixel_count(sides.right, image.spacing))
    left = _area_text(*area_from_pixel_count(sides.left, image.spacing))
    return right, left, "file" if layout.from_file else "assumed"


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
