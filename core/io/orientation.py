"""Patient Orientation of a DICOM file read from its header alone (for reports over many images).

Only plain files are opened (a FIFO would block); any failure means "not known", never an error:
the report then says the sides were assumed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_patient_orientation(path: str | Path) -> tuple[str, ...]:
    import pydicom

    from .dicom_reader import _patient_orientation

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return ()
        dataset = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["PatientOrientation"])
    except Exception:  # noqa: BLE001 - PNG/JPEG, damaged or vanished files: orientation unknown
        return ()
    return _patient_orientation(dataset)
