"""Read one DICOM file into a ``Study``: pixels after the modality LUT, plus what display needs.

Policy (the product segments lungs on chest X-rays; anything else must fail loudly or warn):

- Opened: radiograph modalities CR, DX, DR, RG. Also opened, with a warning, when the modality
  is missing, OT or SC (secondary captures of radiographs are common in teaching files).
- Refused (StudyReadError naming the modality): every other modality (US, MR, CT, NM, PT, XA,
  MG, ...); PALETTE COLOR images; multi-frame objects (NumberOfFrames > 1: single-frame
  radiographs only); images over 200 million pixels (checked before decoding).
- A radiograph whose BodyPartExamined is present and not chest-like (CHEST, THORAX, LUNG) opens
  with a warning: the model was made for chest X-rays, so the user must check the mask.
- RGB / YBR colour images are converted to grey luminance (ITU-R BT.601) with a warning.
- Spacing: ImagerPixelSpacing (detector plane, what CR/DX carry), else PixelSpacing, else None with
  the warning "no pixel spacing: areas in pixels". Zero or non-numeric spacing counts as absent.
- Files without the 128-byte preamble are read with ``force=True`` only when their first bytes
  look like a DICOM dataset, so random files are not parsed as garbage datasets.
- Damaged input (truncated pixel data, garbage, missing pixel data, a transfer syntax with no
  installed decoder) raises StudyReadError with the specific problem; library exceptions are
  caught per step and translated, never passed through.

Patient identifiers go into ``Study.identifiers`` only. pydicom's own warnings can quote element
values (names, IDs), so they are silenced while reading, and messages quote header values only
when they are codes (``core.io.redact``). Only regular files are opened (``core.io.regular_file``).
Pixel Padding Value marks padding (``Study.padding``, ``core.io.padding``); 32-bit values keep
float64 when float32 would round them (``core.io.precision``).
"""

from __future__ import annotations

import logging
import math
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import apply_modality_lut, get_decoder
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.io.codec_check import DamagedPixelData, decode_checked
from core.io.errors import StudyReadError
from core.io.policy import (
    CHEST_WORDS,
    MAX_PIXELS,
    NO_SPACING_WARNING,
    OTHER_XRAY_MODALITIES,
    RADIOGRAPH_MODALITIES,
    UNCERTAIN_MODALITIES,
)
from core.io.padding import padding_mask
from core.io.precision import exact_float
from core.io.redact import code_value, library_reason
from core.io.regular_file import read_regular
from core.io.sniff import looks_like_raw_dicom, read_head
from core.io.study import Study, StudyIdentifiers, WindowPreset
from core.io.voi import VOI_FUNCTIONS

# Exceptions pydicom and its decoder plugins raise on malformed input (found by fuzzing real
# files). Each step catches these and turns them into a StudyReadError that says which step failed.
_PARSE_ERRORS = (
    InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, struct.error, KeyError, IndexError,
    TypeError, AttributeError, OverflowError, NotImplementedError, RecursionError, zlib.error,
)
_DECODE_ERRORS = _PARSE_ERRORS + (RuntimeError, MemoryError)

_ADVICE_REEXPORT = "re-export or copy the study again from the PACS or modality"
_ADVICE_CHEST = "choose a chest radiograph instead"

# Disabling the "pydicom" logger does not silence its children (``pydicom.pixels.decoders.base``
# logs every failed plugin with a traceback, which reached stderr and the viewer's log): a level
# above CRITICAL on each tree's root does, since the children inherit it.
_QUIET_LOGGERS = ("pydicom", "pylibjpeg", "openjpeg", "libjpeg", "rle", "jpeg_ls", "PIL")
_SILENT = logging.CRITICAL + 10
_saved_levels: dict[str, int] = {}
_quiet_lock = threading.Lock()
_quiet_depth = 0
_logger_was_disabled = False


@contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log lines while reading: they can quote identifiers.

    A depth counter keeps concurrent reads (viewer worker threads) from re-enabling the logger
    while another read is still in progress.
    """
    global _quiet_depth, _logger_was_disabled
    logger = logging.getLogger("pydicom")
    with _quiet_lock:
        if _quiet_depth == 0:
            _logger_was_disabled = logger.disabled
            logger.disabled = True
            for name in _QUIET_LOGGERS:
                _saved_levels[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(_SILENT)
        _quiet_depth += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logger.disabled = _logger_was_disabled
                for name, level in _saved_levels.items():
                    logging.getLogger(name).setLevel(level)


def read_dicom(path: str | Path) -> Study:
    """Open a single-frame radiograph; StudyReadError (one line, with advice) for anything else."""
    path = Path(path)
    read_head(path)  # missing / folder / empty / permission get their plain message first
    with _quiet_pydicom():
        ds = _parse(path, stop_before_pixels=False)
        if "PixelData" not in ds:
            # A file cut inside encapsulated pixel data makes pydicom drop the whole dataset, so
            # re-read the header alone to apply the policy and tell "truncated" from "absent".
            header = _parse(path, stop_before_pixels=True)
            _check_policy(path, header)
            _raise_missing_pixels(path, header)
        warn = _check_policy(path, ds)
        raw = _decode(path, ds)
        padding, padding_warning = padding_mask(ds, raw) if raw.ndim == 2 else (None, "")
        pixels, colour_warning = _to_modality_values(path, ds, raw)
    for extra in (colour_warning, padding_warning):
        if extra:
            warn.append(extra)
    spacing, source, spacing_warning = _spacing(ds)
    if spacing_warning:
        warn.append(spacing_warning)
    presets, preset_warnings = _window_presets(ds)
    warn.extend(preset_warnings)
    lut, first_mapped, lut_bits, lut_warning = _voi_lut(ds)
    if lut_warning:
        warn.append(lut_warning)
    photometric = _text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2"
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        photometric = "MONOCHROME2"  # colour was converted to luminance above
    return Study(
        path=path,
        pixels=pixels,
        kind="dicom",
        padding=padding,
        photometric=photometric,
        presentation_inverse=_text(ds, "PresentationLUTShape").upper() == "INVERSE",
        modality=_text(ds, "Modality").upper(),
        body_part=_text(ds, "BodyPartExamined").upper(),
        view_position=_text(ds, "ViewPosition").upper(),
        patient_orientation=_patient_orientation(ds),
        bits_stored=_int(ds, "BitsStored", _int(ds, "BitsAllocated", 8)),
        pixel_spacing_mm=spacing,
        spacing_source=source,
        window_presets=presets,
        voi_lut=lut,
        voi_lut_first_mapped=first_mapped,
        voi_lut_bits=lut_bits,
        identifiers=_identifiers(ds),
        warnings=warn,
    )


# --- parsing ---------------------------------------------------------------------------------


def _parse(path: Path, stop_before_pixels: bool) -> Dataset:
    """dcmread with force=False; force=True only for preamble-less files that look like DICOM."""
    try:
        ds = _dcmread(path, force=False, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        ds = None
    if ds is not None:
        _materialise(path, ds)
        _ensure_transfer_syntax(path, ds)
        return ds
    if not looks_like_raw_dicom(read_head(path)):
        raise StudyReadError(
            path,
            "not a DICOM file: no 'DICM' marker at byte 128 and no recognisable DICOM header",
            "open a DICOM, PNG or JPEG file",
        )
    ds = _dcmread(path, force=True, stop_before_pixels=stop_before_pixels)
    _materialise(path, ds)
    _ensure_transfer_syntax(path, ds)
    return ds


def _dcmread(path: Path, force: bool, stop_before_pixels: bool) -> Dataset:
    """dcmread of a regular file; InvalidDicomError passes (when not forced), the rest is translated.

    A Deflated Explicit VR file is one zlib stream after the file meta: cut short, zlib says only
    "Error -5 while decompressing data", so that case is named for what it is.
    """
    read_head(path, 4)  # a regular file, checked without blocking (a FIFO would hang dcmread)
    try:
        return pydicom.dcmread(path, force=force, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        if force:
            raise StudyReadError(path, "the DICOM header could not be read", f"the file is damaged; {_ADVICE_REEXPORT}") from None
        raise
    except zlib.error:
        raise StudyReadError(
            path,
            "the deflate-compressed DICOM data set is truncated or corrupt (Deflated Explicit VR Little Endian)",
            f"the copy or export was interrupted; {_ADVICE_REEXPORT}",
        ) from None
    except _PARSE_ERRORS as exc:
        raise StudyReadError(
            path, f"the DICOM header could not be read ({_reason(exc)})", f"the file is damaged; {_ADVICE_REEXPORT}"
        ) from None


def _materialise(path: Path, ds: Dataset) -> None:
    """Convert every raw element now, so a damaged value fails here and not deep in later code.

    pydicom parses element values lazily; without this, any later ``ds.get`` could raise.
    """
    try:
        for _element in ds.file_meta.iterall() if hasattr(ds, "file_meta") else ():
            pass
        for _element in ds.iterall():
            pass
    except _PARSE_ERRORS as exc:
        raise StudyReadError(
            path, f"the DICOM header is damaged ({_reason(exc)})", f"the file is damaged; {_ADVICE_REEXPORT}"
        ) from None


def _ensure_transfer_syntax(path: Path, ds: Dataset) -> None:
    """Preamble-less or damaged files may lack the syntax; infer the (native) one from the parse.

    Files with encapsulated (compressed) pixel data can't be inferred: decoding then fails with a
    clear "could not be decoded" error instead of garbage pixels.
    """
    if not hasattr(ds, "file_meta"):
        ds.file_meta = FileMetaDataset()
    meta = ds.file_meta
    if meta.get("TransferSyntaxUID"):
        return
    implicit, little = ds.original_encoding
    if implicit is None or little is None:
        raise StudyReadError(
            path,
            "the DICOM file has no transfer syntax and its encoding is unknown",
            _ADVICE_REEXPORT,
        )
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (
        ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )


def _raise_missing_pixels(path: Path, header: Dataset) -> None:
    sop_class = str(header.get("SOPClassUID", ""))
    if sop_class == "1.2.840.10008.1.3.10":
        raise StudyReadError(
            path,
            "this is a DICOMDIR (a media index), not an image",
            "open the image files it lists, or add the folder",
        )
    if "FloatPixelData" in header or "DoubleFloatPixelData" in header:
        raise StudyReadError(path, "float pixel data (a parametric map) is not a radiograph", _ADVICE_CHEST)
    if header.get("Rows") and _file_contains_pixel_tag(path):
        raise StudyReadError(
            path,
            "pixel data is truncated: the file ends inside the pixel data",
            f"the copy or export was interrupted; {_ADVICE_REEXPORT}",
        )
    name = _uid_name(sop_class) if sop_class else ""
    if header.get("Rows") or "Image Storage" in name:
        raise StudyReadError(
            path,
            f"the image has no pixel data{f' ({name})' if name else ''}: "
            "the file is truncated or was exported without pixels",
            _ADVICE_REEXPORT,
        )
    raise StudyReadError(
        path, f"the file has no pixel data{f' ({name})' if name else ''}; it is not an image", _ADVICE_CHEST
    )


def _file_contains_pixel_tag(path: Path) -> bool:
    try:
        data = read_regular(path)
    except OSError:
        return False
    return b"\xe0\x7f\x10\x00" in data or b"\x7f\xe0\x00\x10" in data


# --- policy ----------------------------------------------------------------------------------


def _check_policy(path: Path, ds: Dataset) -> list[str]:
    """Refuse what the product can't segment; return warnings for what it opens with doubts."""
    warn: list[str] = []
    modality = _text(ds, "Modality").upper()
    photometric = _text(ds, "PhotometricInterpretation").upper()
    palette = photometric == "PALETTE COLOR"
    if modality not in RADIOGRAPH_MODALITIES:
        if modality in UNCERTAIN_MODALITIES:
            warn.append(
                f"{UNCERTAIN_MODALITIES[modality]}: opened as a radiograph; check that this is a chest X-ray"
            )
        else:
            if modality in OTHER_XRAY_MODALITIES:
                what = f"modality {modality} ({OTHER_XRAY_MODALITIES[modality]}) is not a chest radiograph"
            else:
                what = f"modality {code_value(modality)} is not a radiograph"
                what += " (it is a palette-colour image)" if palette else ""
            raise StudyReadError(
                path, f"{what}; this product segments lungs on chest X-rays (CR/DX)", _ADVICE_CHEST
            )
    if palette:
        raise StudyReadError(
            path, "this is a palette-colour image (PALETTE COLOR), not a grey-scale radiograph", _ADVICE_CHEST
        )
    if photometric and photometric not in ("MONOCHROME1", "MONOCHROME2", "RGB") and not photometric.startswith("YBR"):
        raise StudyReadError(
            path,
            f"photometric interpretation {code_value(photometric)} is not supported",
            _ADVICE_CHEST,
        )
    body_part = _text(ds, "BodyPartExamined").upper()
    if body_part and not any(word in body_part for word in CHEST_WORDS):
        warn.append(f"body part '{code_value(body_part, 'not stated as a code')}' is not a chest; the model was made for chest X-rays; check the mask")
    frames = _int(ds, "NumberOfFrames", 1)
    if frames > 1:
        raise StudyReadError(
            path,
            f"multi-frame object ({frames} frames); only single-frame radiographs can be opened",
            "export the frame you need as a single-frame image",
        )
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    if "PixelData" in ds and (rows <= 0 or cols <= 0):
        raise StudyReadError(path, f"invalid image size {rows}x{cols} in the header", _ADVICE_REEXPORT)
    if rows * cols > MAX_PIXELS:
        raise StudyReadError(
            path, f"image size {rows}x{cols} is too large to open (limit {MAX_PIXELS // 1_000_000} million pixels)",
            "the header is probably damaged",
        )
    return warn


# --- pixels ----------------------------------------------------------------------------------


def _decode(path: Path, ds: Dataset) -> np.ndarray:
    """pixel_array, after checking that a decoder exists and native data is complete."""
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    label = f"{syntax.name} ({syntax})" if syntax.name != str(syntax) else str(syntax)
    try:
        decoder = get_decoder(syntax)
    except (NotImplementedError, ValueError):
        raise StudyReadError(
            path,
            f"transfer syntax {label} has no installed decoder",
            "ask for the image uncompressed or as JPEG / JPEG 2000 / RLE",
        ) from None
    if not decoder.is_available:
        raise StudyReadError(
            path, f"transfer syntax {label} has no installed decoder", "install the pylibjpeg plugins for it"
        )
    if not ds.get("PixelData"):  # a damaged length can leave the element with no value at all
        raise StudyReadError(
            path, "the pixel data element is empty or damaged", f"the file is damaged; {_ADVICE_REEXPORT}"
        )
    if not syntax.is_compressed:
        expected = _expected_native_bytes(ds)
        found = len(ds.PixelData)
        if expected and found < expected:
            raise StudyReadError(
                path,
                f"pixel data is truncated: expected {expected} bytes, found {found}",
                f"the copy or export was interrupted; {_ADVICE_REEXPORT}",
            )
    try:
        arr = decode_checked(ds, syntax, decoder)
    except DamagedPixelData as exc:
        raise StudyReadError(
            path,
            f"pixel data damaged: {exc}",
            f"the picture would be partly scrambled, so it is not shown; {_ADVICE_REEXPORT}",
        ) from None
    except _DECODE_ERRORS as exc:
        raise StudyReadError(
            path,
            f"pixel data could not be decoded ({syntax.name}: {_reason(exc)})",
            f"the file may be truncated or corrupt; {_ADVICE_REEXPORT}",
        ) from None
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    if arr.shape[:2] != (rows, cols) or arr.ndim not in (2, 3):
        raise StudyReadError(
            path,
            f"decoded pixel data has shape {arr.shape}, expected {rows}x{cols}",
            _ADVICE_REEXPORT,
        )
    return arr


def _expected_native_bytes(ds: Dataset) -> int:
    rows, cols = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    samples = _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated", 0)
    frames = max(_int(ds, "NumberOfFrames", 1), 1)
    count = rows * cols * samples * frames
    if bits <= 0:
        return 0
    if bits == 1:
        return (count + 7) // 8
    return count * ((bits + 7) // 8)


def _to_modality_values(path: Path, ds: Dataset, arr: np.ndarray) -> tuple[np.ndarray, str]:
    """Grey: modality LUT / rescale -> float32 (float64 past 2**24). Colour: BT.601 luminance, with a warning."""
    colour_warning = ""
    if arr.ndim == 3:
        if arr.shape[2] != 3:
            raise StudyReadError(path, f"unsupported pixel layout {arr.shape}", _ADVICE_CHEST)
        rgb = arr.astype(np.float32)
        values = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        photometric = _text(ds, "PhotometricInterpretation").upper()
        colour_warning = f"colour image ({code_value(photometric)}) converted to grey (luminance); check it is a radiograph"
    else:
        try:
            values = apply_modality_lut(arr, ds)
        except _DECODE_ERRORS as exc:
            raise StudyReadError(
                path, f"the modality LUT / rescale could not be applied ({_reason(exc)})", _ADVICE_REEXPORT
            ) from None
    pixels = exact_float(values)
    if not np.isfinite(pixels).all():
        raise StudyReadError(path, "rescale slope/intercept give non-finite pixel values", _ADVICE_REEXPORT)
    return pixels, colour_warning


# --- presentation attributes -----------------------------------------------------------------


def _spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str, str]:
    """(row, column) spacing in mm from ImagerPixelSpacing, else PixelSpacing."""
    rejected = []
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        if keyword not in ds:
            continue
        pair = _floats(ds.get(keyword))
        if len(pair) >= 2 and all(math.isfinite(v) and v > 0 for v in pair[:2]):
            return (pair[0], pair[1]), keyword, ""
        rejected.append(f"{keyword} is not valid")
    detail = f" ({'; '.join(rejected)})" if rejected else ""
    return None, "none", NO_SPACING_WARNING + detail


def _window_presets(ds: Dataset) -> tuple[list[WindowPreset], list[str]]:
    """Every WindowCenter/WindowWidth pair, named by WindowCenterWidthExplanation when present."""
    centers = _floats(ds.get("WindowCenter"))
    widths = _floats(ds.get("WindowWidth"))
    if not centers and not widths:
        return [], []
    warn: list[str] = []
    names = _strings(ds.get("WindowCenterWidthExplanation"))
    function = _text(ds, "VOILUTFunction").upper() or "LINEAR"
    if function not in VOI_FUNCTIONS:
        warn.append(f"VOI LUT function {code_value(function)} is unknown; LINEAR used")
        function = "LINEAR"
    if len(centers) != len(widths):
        warn.append(f"{len(centers)} window centres but {len(widths)} widths; the extra values are ignored")
    presets = []
    minimum = 1.0 if function == "LINEAR" else 0.0
    for index, (center, width) in enumerate(zip(centers, widths)):
        if not (math.isfinite(center) and math.isfinite(width)) or width < minimum or width <= 0:
            warn.append(f"file window {index + 1} (centre {center:g}, width {width:g}) is not valid; skipped")
            continue
        name = names[index].strip() if index < len(names) and names[index].strip() else f"File window {index + 1}"
        presets.append(WindowPreset(name=name, center=center, width=width, function=function))
    return presets, warn


def _voi_lut(ds: Dataset) -> tuple[np.ndarray | None, int, int, str]:
    """First VOI LUT Sequence item -> (table, first mapped value, output bits, warning)."""
    sequence = ds.get("VOILUTSequence")
    if not sequence:
        return None, 0, 16, ""
    try:
        item = sequence[0]
        descriptor = [int(v) for v in item.LUTDescriptor]
        entries = descriptor[0] or 65536
        first_mapped = descriptor[1]
        bits = descriptor[2]
        element = item["LUTData"]
        if isinstance(element.value, (bytes, bytearray)):
            little = ds.original_encoding[1] is not False
            table = np.frombuffer(element.value, dtype="<u2" if little else ">u2")
        else:
            table = np.asarray(_floats(element.value), dtype=np.float64)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        return None, 0, 16, f"VOI LUT Sequence is not valid ({_reason(exc)}); ignored"
    if table.size == 0:
        return None, 0, 16, "VOI LUT Sequence has no data; ignored"
    table = table[:entries].astype(np.uint16 if table.max(initial=0) <= 65535 else np.float64)
    if _int(ds, "PixelRepresentation", 0) == 1 and first_mapped >= 32768:
        first_mapped -= 65536  # descriptor value is SS for signed images
    warn = ""
    top = float(table.max(initial=0))
    if not 1 <= bits <= 16 or top > 2**bits - 1:
        fixed = max(1, int(math.ceil(math.log2(top + 1)))) if top > 0 else 16
        warn = f"VOI LUT descriptor says {bits} bits but the table needs {fixed}; {fixed} used"
        bits = fixed
    return table, first_mapped, bits, warn


def _identifiers(ds: Dataset) -> StudyIdentifiers:
    return StudyIdentifiers(
        patient_id=_text(ds, "PatientID"),
        patient_name=_text(ds, "PatientName"),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        study_description=_text(ds, "StudyDescription"),
        study_date=_text(ds, "StudyDate"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        series_description=_text(ds, "SeriesDescription"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        accession_number=_text(ds, "AccessionNumber"),
    )


# --- small helpers ---------------------------------------------------------------------------


def _text(ds: Dataset, keyword: str) -> str:
    """An element's value as a stripped string ('' when absent or unreadable)."""
    try:
        value = ds.get(keyword)
    except _PARSE_ERRORS:
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    return str(value).strip()


def _int(ds: Dataset, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return default
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            value = value[0]
        return int(value)
    except _PARSE_ERRORS:
        return default


def _floats(value: object) -> list[float]:
    """A DS/IS/FD value, single or multi-valued, as floats (unparseable parts dropped)."""
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    out = []
    for item in items:
        try:
            out.append(float(item))
        except (TypeError, ValueError):
            continue
    return out


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def _uid_name(uid: str) -> str:
    name = UID(uid).name
    return name if name != uid else f"SOP class {uid}"


def _reason(exc: BaseException) -> str:
    """A short, one-line form of a library exception message, without the values it quotes."""
    return library_reason(exc)


def _patient_orientation(ds) -> tuple[str, ...]:
    """Patient Orientation as short upper-case codes ("L", "F", ...); () when absent or malformed."""
    try:
        value = ds.get("PatientOrientation")
        values = [] if value is None else [value] if isinstance(value, str) else list(value)
    except Exception:  # noqa: BLE001 - a damaged optional element must not stop the study opening
        return ()
    codes = tuple(str(v).strip().upper()[:4] for v in values if str(v).strip())
    return codes if len(codes) == 2 and all(set(c) <= set("LRAPHF") for c in codes) else ()
