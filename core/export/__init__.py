"""Exports: mask PNG, DICOM SEG (highdicom, imported on first use), review CSV, lung measurements."""

from .csv_report import COLUMNS as CSV_COLUMNS
from .csv_report import export_review_csv, review_rows
from .dicom_seg import export_dicom_seg
from .errors import ExportError
from .mask_png import export_mask_png
from ..review.measurements import UNIT_CM2, UNIT_PX, area_from_pixel_count, lung_area, lung_fraction, valid_spacing

__all__ = [
    "CSV_COLUMNS",
    "ExportError",
    "UNIT_CM2",
    "UNIT_PX",
    "area_from_pixel_count",
    "export_dicom_seg",
    "export_mask_png",
    "export_review_csv",
    "lung_area",
    "lung_fraction",
    "review_rows",
    "valid_spacing",
]
