"""Helpers for the store and export tests (no tests here): studies built from real DICOM headers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from core.io.study import Study, StudyIdentifiers
from core.models.artifact import ModelInfo

try:
    from tests.shared_data import shared_data_dir
except ImportError:  # pragma: no cover - the shared helper is owned by another module

    def shared_data_dir() -> Path:
        env = os.environ.get("ADAQAT_SHARED_DATA")
        return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


UNCOMPRESSED = "RG1_UNCR.dcm"
JPEG2000 = "RG1_J2KR.dcm"
JPEG_BASELINE = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"

MODEL = ModelInfo(name="lung-lite", version="1.2", backbone="lite_medsam", precision="fp32", weights_sha256="ab" * 32)
MODEL_INT8 = ModelInfo(name="lung-lite", version="1.3", backbone="lite_medsam", precision="int8", weights_sha256="cd" * 32)


def dicom_path(name: str) -> Path:
    path = shared_data_dir() / "dicom" / name
    if not path.is_file():
        pytest.skip(f"shared DICOM not found: {path} (set ADAQAT_SHARED_DATA)")
    return path


def study_from_dicom(path: Path) -> Study:
    """A Study from a DICOM header (pixels are zeros of the right size: the store never reads them)."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    spacing = None
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            spacing = (float(value[0]), float(value[1]))
            break
    ids = StudyIdentifiers(
        patient_id=str(ds.get("PatientID", "")),
        patient_name=str(ds.get("PatientName", "")),
        patient_birth_date=str(ds.get("PatientBirthDate", "")),
        study_instance_uid=str(ds.get("StudyInstanceUID", "")),
        study_description=str(ds.get("StudyDescription", "")),
        series_instance_uid=str(ds.get("SeriesInstanceUID", "")),
        series_description=str(ds.get("SeriesDescription", "")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
    )
    return Study(
        path=Path(path),
        pixels=np.zeros((int(ds.Rows), int(ds.Columns)), np.float32),
        kind="dicom",
        pixel_spacing_mm=spacing,
        spacing_source="PixelSpacing" if spacing else "none",
        identifiers=ids,
    )


def study_from_png(path: Path, shape=(64, 80)) -> Study:
    """A PNG study; the content depends on the file name, so different names give different keys."""
    import cv2

    seed = sum(Path(path).name.encode())
    image = ((np.arange(shape[0] * shape[1]) + seed) % 251).astype(np.uint8).reshape(shape)
    cv2.imwrite(str(path), image)
    return Study(path=Path(path), pixels=image.astype(np.float32), kind="image")


def box_mask(shape, top=10, left=10, bottom=None, right=None) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[top : bottom if bottom is not None else shape[0] // 2, left : right if right is not None else shape[1] // 2] = 255
    return mask
