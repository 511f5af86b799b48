"""Export a lung mask as a DICOM Segmentation (binary) referencing its source image, via highdicom.

The source must be a DICOM file; its header is read without decoding pixel data (highdicom only needs
the attributes), so any transfer syntax works, JPEG 2000 included. The SEG's patient and study modules
are copied by highdicom from the source and nothing else about the patient is added.

Projection radiographs (CR, DX, secondary capture: no patient position) make highdicom write a Pixel
Measures functional group without Slice Thickness, which its own reader then refuses. The standard
requires that group (and Slice Thickness) only when the SEG has a Frame of Reference, so for such
sources the SEG is written without Frame of Reference and without that group; it references the
source image (Derivation Image / Referenced Series), whose geometry it shares pixel for pixel.

Segments: 1 = right lung, 2 = left lung (the patient's sides, from the source's Patient Orientation,
``core.review.lung_sides``; when the file does not say, the usual PA/AP display is assumed and the
labels say "side assumed"). They do not overlap, so a reader that merges segments gets the whole
mask back. ``with_union=True`` adds segment 3, both lungs as one region, for a PACS that shows only
one segment; it overlaps the other two.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..store.atomic import atomic_write_bytes
from ..store.masks import as_binary_mask
from .errors import ExportError, write_failure

if TYPE_CHECKING:
    from ..models.artifact import ModelInfo

MANUFACTURER = "AdaQAT"
MODEL_NAME = "AdaQAT Viewer"
SERIES_DESCRIPTION = "AI lung segmentation"
SEGMENT_LABEL = "Lung"  # the union segment (with_union=True)
SIDE_LABELS = {"R": "Right lung", "L": "Left lung"}
SIDE_CODES = {"R": ("3341006", "Right lung"), "L": ("44029006", "Left lung")}  # SNOMED CT structures
ASSUMED_SUFFIX = " (side assumed)"
SERIES_NUMBER = 901
ALGORITHM_SOURCE = "AdaQAT"
SEG_SUFFIX = "_seg.dcm"


def new_series_fields(series_number: int, description: str) -> dict:
    """What every object this product writes (the SEG, the area report) says of its new series and itself."""
    import highdicom as hd

    return {"series_instance_uid": hd.UID(), "series_number": series_number, "sop_instance_uid": hd.UID(),
            "instance_number": 1, "manufacturer": MANUFACTURER, "software_versions": __version__,
            "series_description": description}


def algorithm_type_for(mask_source: str, model: ModelInfo | None) -> str:
    """AUTOMATIC for unedited model output, SEMIAUTOMATIC when a person prompted or edited, MANUAL without a model."""
    if model is None:
        return "MANUAL"
    return "AUTOMATIC" if mask_source == "model" else "SEMIAUTOMATIC"


def algorithm_version(model: ModelInfo) -> str:
    return f"{model.version} INT8" if model.precision == "int8" else str(model.version)


def export_dicom_seg(
    source_dicom_path: str | Path,
    mask: np.ndarray,
    out_path: str | Path,
    model: ModelInfo | None,
    reader: str,
    *,
    mask_source: str = "model",
    with_union: bool = False,
    quality=None,
) -> Path:
    """Write a binary DICOM SEG of ``mask`` (anything > 0 is lung) for the image at ``source_dicom_path``.

    ``mask_source`` is the source of the mask revision being exported ("model", "prompt" or "edit"):
    "model" gives algorithm type AUTOMATIC, the others SEMIAUTOMATIC (MANUAL if ``model`` is None).
    ``reader`` becomes the Content Creator's Name. ``out_path`` may be a folder, in which case the
    file is ``<source stem>_seg.dcm`` inside it. Returns the path written. Raises ``ExportError``.
    ``quality`` (``core.review.quality_flags.MaskQuality`` of an automatic mask) is written as a note
    (Image Comments) and as algorithm parameters, so a PACS reader sees the confidence and the flags.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    _quiet_highdicom_logs()
    source_path = Path(source_dicom_path)
    source = _read_source(source_path)
    rows, columns = int(source.Rows), int(source.Columns)
    try:
        binary = as_binary_mask(mask, (rows, columns)) > 0
    except ValueError as error:
        raise ExportError(f"{source_path.name}: {error}; export the mask of this image") from None

    algorithm_type = algorithm_type_for(mask_source, model)
    identification = None
    if model is not None:
        parameters = {"precision": str(model.precision)}
        if model.weights_sha256:
            parameters["weights_sha256"] = str(model.weights_sha256)[:16]
        if quality is not None:
            parameters["confidence"] = f"{quality.confidence:.3f}"
            parameters["quality_flags"] = "; ".join(f.text for f in quality.flags) or "none"
        identification = hd.AlgorithmIdentificationSequence(
            name=str(model.name)[:64],
            family=codes.DCM.ArtificialIntelligence,
            version=algorithm_version(model)[:64],
            source=ALGORITHM_SOURCE,
            parameters=parameters,
        )
    layers, descriptions = _segments(source, binary, with_union)

    def describe(number: int, label: str, concept) -> object:
        return hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=concept,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues(algorithm_type),
            algorithm_identification=identification,
        )

    segment_descriptions = [describe(i + 1, label, concept) for i, (label, concept) in enumerate(descriptions)]
    try:
        # highdicom warns about odd source values (e.g. a one-component PatientName) and quotes them:
        # those warnings would put identifiers into logs, so they are silenced here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation(
                source_images=[source],
                pixel_array=layers,
                segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=segment_descriptions,
                **new_series_fields(SERIES_NUMBER, SERIES_DESCRIPTION),
                manufacturer_model_name=MODEL_NAME,
                device_serial_number="0",
                content_label="LUNG",
                content_description=(f"Lung segmentation by {model.label}" if model is not None else "Lung segmentation")[:64],
                content_creator_name=_person_name(reader),
                omit_empty_frames=False,
            )
            _drop_unreadable_pixel_measures(seg)
            if quality is not None:
                seg.ImageComments = quality_note(quality)
            buffer = io.BytesIO()
            seg.save_as(buffer, enforce_file_format=True)
    except ExportError:
        raise
    except Exception as error:  # highdicom raises ValueError/AttributeError/TypeError for odd sources
        raise ExportError(
            f"{source_path.name}: could not build a DICOM SEG for this image ({type(error).__name__}: {error}); "
            "export the mask as PNG instead"
        ) from None

    target = Path(out_path)
    if target.is_dir():
        target = target / f"{source_path.stem}{SEG_SUFFIX}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write_bytes(target, buffer.getvalue())
    except OSError as error:
        raise write_failure(target, error) from None


def _segments(source, binary: np.ndarray, with_union: bool) -> tuple[np.ndarray, list[tuple[str, object]]]:
    """(1 x rows x columns x segments bool array, [(label, coded property type)]): right, left[, both]."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from ..review.lung_sides import masks_per_side, side_layout

    orientation = source.get("PatientOrientation") or ()
    layout = side_layout([str(v) for v in orientation] if not isinstance(orientation, str) else [orientation])
    right, left = masks_per_side(binary, layout)
    suffix = "" if layout.from_file else ASSUMED_SUFFIX
    layers = [right, left]
    descriptions = [(SIDE_LABELS[side] + suffix, hd.sr.CodedConcept(SIDE_CODES[side][0], "SCT", SIDE_CODES[side][1]))
                    for side in ("R", "L")]
    if with_union:
        layers.append(binary)
        descriptions.append((SEGMENT_LABEL, codes.SCT.Lung))
    return np.stack(layers, axis=-1)[np.newaxis], descriptions


def _read_source(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # pydicom's warnings about odd values quote them, identifiers included: keep them out of logs.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                dataset = pydicom.dcmread(path, stop_before_pixels=True)
            except InvalidDicomError:
                # Files without the 128-byte preamble are still DICOM; anything else fails the checks below.
                dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except FileNotFoundError:
        raise ExportError(f"{path}: file not found; the source image was moved or deleted") from None
    except IsADirectoryError:
        raise ExportError(f"{path}: this is a folder, not a DICOM file") from None
    except OSError as error:
        raise write_failure(path, error) from None
    except Exception:
        dataset = None
    required = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "Columns")
    if dataset is None or any(keyword not in dataset for keyword in required):
        raise ExportError(
            f"{path.name}: not a DICOM image, so a DICOM SEG cannot reference it; export the mask as PNG instead"
        )
    if int(dataset.get("NumberOfFrames", 1) or 1) != 1:
        raise ExportError(f"{path.name}: multi-frame images are not supported for DICOM SEG export; export PNG instead")
    if "FrameOfReferenceUID" in dataset and "ImagePositionPatient" not in dataset:
        # A projection image (DX with a Frame of Reference but no patient position): highdicom would
        # copy the Frame of Reference without the Slice Thickness the standard then requires, and
        # could not read its own output. The SEG references the source image directly instead.
        del dataset.FrameOfReferenceUID
    # Type 2 attributes (present, possibly empty) that highdicom copies; some exporters omit them.
    # Adding them empty invents no data.
    for keyword in _TYPE2_COPIED:
        if keyword not in dataset:
            setattr(dataset, keyword, "")
    return dataset


_TYPE2_COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _quiet_highdicom_logs() -> None:
    """highdicom logs source UIDs at INFO/DEBUG ("copy Patient-related attributes from dataset <UID>").

    Identifiers must not reach the application's logs, so its loggers are held at WARNING unless the
    application configured a level for them itself.
    """
    logger = logging.getLogger("highdicom")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _person_name(reader: str) -> str:
    """The reader as a DICOM PN value: one component gets a trailing caret so it reads as a family name."""
    name = " ".join(str(reader or "").replace("\\", " ").split())[:64] or "unknown"
    return name if "^" in name else name + "^"


def _drop_unreadable_pixel_measures(seg) -> None:
    if "FrameOfReferenceUID" in seg:
        return
    shared = seg.SharedFunctionalGroupsSequence[0]
    measures = shared.get("PixelMeasuresSequence")
    if measures and "SliceThickness" not in measures[0]:
        del shared.PixelMeasuresSequence


def quality_note(quality) -> str:
    """The SEG's note: confidence and each quality flag with its reason (Image Comments, LT)."""
    note = f"Automatic mask confidence {quality.confidence:.2f}"
    if quality.flags:
        note += ". Quality flags: " + "; ".join(f"{flag.text} ({flag.reason})" for flag in quality.flags)
    else:
        note += ". No quality flag"
    return note[:10240]
