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

from ..export.dicom_seg import MANUFACTURER, MODEL_NAME, _quiet_highdicom_logs, _read_source, new_series_fields
from ..review.measurements import UNIT_CM2, lung_area
from ..store.atomic import atomic_write_bytes

SERIES_NUMBER = 902
SERIES_DESCRIPTION = "AI lung area"
PLAIN_CHEST_XRAY = ("399208008", "SCT", "Plain chest X-ray")


def write_lung_area_report(
    source_dicom_path: str | Path,
    seg_path: str | Path,
    spacing_mm: Sequence[float] | None,
    out_path: str | Path,
) -> Path:
    """Write a Comprehensive SR with the area of each segment of the SEG (the lungs, or each lung),
    each measurement referencing its segment and the image.

    Areas are in cm² when the pixel spacing is known, else in pixels (UCUM ``{pixels}``); they are
    measured on the SEG's own pixels, so the report always agrees with the object it points to.
    Raises ``ExportError`` for a source that is not a DICOM image, ``OSError`` when it cannot be written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    _quiet_highdicom_logs()
    source = _read_source(Path(source_dicom_path))
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=MODEL_NAME, manufacturer_name=MANUFACTURER
        ),
    )
    seg = hd.seg.segread(seg_path)
    groups = [_segment_group(hd, seg, source, item, spacing_mm) for item in seg.SegmentSequence]
    with warnings.catch_warnings():  # highdicom quotes odd source values (identifiers) in warnings
        warnings.simplefilter("ignore")
        report = hd.sr.MeasurementReport(
            observation_context=hd.sr.ObservationContext(observer_device_context=device),
            procedure_reported=hd.sr.CodedConcept(*PLAIN_CHEST_XRAY),
            imaging_measurements=groups,
        )
        sr = hd.sr.ComprehensiveSR(
            evidence=[source, seg],
            content=report,
            **new_series_fields(SERIES_NUMBER, SERIES_DESCRIPTION),
        )
        buffer = io.BytesIO()
        sr.save_as(buffer, enforce_file_format=True)
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(target, buffer.getvalue())


def _segment_group(hd, seg, source, item, spacing_mm):
    """One TID 1410 planar ROI group: the segment's area, its finding (Right lung, Left lung, Lung)."""
    number = int(item.SegmentNumber)
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[number])[0, ..., 0]
    value, unit = lung_area(pixels, spacing_mm)
    ucum = hd.sr.CodedConcept("cm2", "UCUM", "cm2") if unit == UNIT_CM2 else hd.sr.CodedConcept("{pixels}", "UCUM", "pixels")
    segment = hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=seg.SOPClassUID,
        sop_instance_uid=seg.SOPInstanceUID,
        frame_number=_frame_of(seg, number),
        segment_number=number,
        source_image=hd.sr.SourceImageForSegmentation(
            referenced_sop_class_uid=source.SOPClassUID, referenced_sop_instance_uid=source.SOPInstanceUID
        ),
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=str(item.SegmentLabel)[:64]),
        referenced_segment=segment,
        finding_type=hd.sr.CodedConcept.from_dataset(item.SegmentedPropertyTypeCodeSequence[0]),
        measurements=[hd.sr.Measurement(name=hd.sr.CodedConcept("42798000", "SCT", "Area"), value=round(float(value), 3),
                                        unit=ucum)],
    )


def _frame_of(seg, number: int) -> int:
    """The SEG frame (1-based) that holds segment ``number``."""
    for index, frame in enumerate(seg.get("PerFrameFunctionalGroupsSequence", []), start=1):
        identification = frame.get("SegmentIdentificationSequence")
        if identification and int(identification[0].ReferencedSegmentNumber) == number:
            return index
    return number  # one frame per segment, in segment order (omit_empty_frames=False)
