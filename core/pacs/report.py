"""The lung-area report sent back with the SEG: a DICOM Structured Report (TID 1500 measurement report).

Why an SR and not a Secondary Capture: the area is a number with a unit, and an SR keeps it one
(coded concept "Area", UCUM unit, the value), so the PACS, a dashboard or a registry can read it
without OCR; it references the exact image and the SEG segment it was measured on, so the number
stays tied to the mask the reader accepted; it is a few kilobytes where a screenshot is megabytes;
and it has no pixels, so nothing (a name, an ID) can be burned into it. Viewers that do not render
SRs still list it in the study. A Secondary Capture would only be a picture of the number.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..export.dicom_seg import MANUFACTURER, MODEL_NAME, _quiet_highdicom_logs, _read_source
from ..export.measurements import UNIT_CM2, lung_area
from ..store.atomic import atomic_write_bytes

SERIES_NUMBER = 902
SERIES_DESCRIPTION = "AI lung area"
PLAIN_CHEST_XRAY = ("399208008", "SCT", "Plain chest X-ray")


def write_lung_area_report(
    source_dicom_path: str | Path,
    seg_path: str | Path,
    mask: np.ndarray,
    spacing_mm: Sequence[float] | None,
    out_path: str | Path,
) -> Path:
    """Write a Comprehensive SR with the lung area of ``mask``, referencing the image and segment 1 of the SEG.

    The area is in cm² when the pixel spacing is known, else in pixels (UCUM ``{pixels}``).
    Raises ``ExportError`` for a source that is not a DICOM image, ``OSError`` when it cannot be written.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    _quiet_highdicom_logs()
    source = _read_source(Path(source_dicom_path))
    seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
    value, unit = lung_area(mask, spacing_mm)
    ucum = hd.sr.CodedConcept("cm2", "UCUM", "cm2") if unit == UNIT_CM2 else hd.sr.CodedConcept("{pixels}", "UCUM", "pixels")
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=MODEL_NAME, manufacturer_name=MANUFACTURER
        ),
    )
    segment = hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        frame_number=1,
        segment_number=1,
        source_image=hd.sr.SourceImageForSegmentation(
            referenced_sop_class_uid=source.SOPClassUID, referenced_sop_instance_uid=source.SOPInstanceUID
        ),
    )
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Lungs"),
        referenced_segment=segment,
        finding_type=codes.SCT.Lung,
        measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=round(float(value), 3), unit=ucum)],
    )
    with warnings.catch_warnings():  # highdicom quotes odd source values (identifiers) in warnings
        warnings.simplefilter("ignore")
        report = hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=device),
            procedure_reported=hd.sr.CodedConcept(*PLAIN_CHEST_XRAY),
            imaging_measurements=[group],
        )
        sr = hd.sr.ComprehensiveSR(
            evidence=[source, seg],
            content=report,
            series_instance_uid=hd.UID(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            series_description=SERIES_DESCRIPTION,
            software_versions=__version__,
        )
        buffer = io.BytesIO()
        sr.save_as(buffer, enforce_file_format=True)
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(target, buffer.getvalue())
