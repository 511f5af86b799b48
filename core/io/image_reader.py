"""Read a PNG or JPEG (8- or 16-bit) into a ``Study``.

Exported radiographs and public datasets (the training set is JPEG) come as plain images: no
modality, no spacing, no window. They are opened as MONOCHROME2 grey images; colour is reduced to
luminance (with a warning when the channels really differ), alpha is dropped. Decoding goes
through ``cv2.imdecode`` on the file's bytes (read as a regular file only), so non-ASCII paths work
on Windows and a pipe never blocks. A JPEG's EXIF orientation is applied (``core.io.exif``): a
mirrored chest must not be shown or segmented as it was stored. The 200-megapixel limit is checked
on the size header wherever it sits in the file, and again on the decoded image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.io.errors import StudyReadError
from core.io.exif import apply_orientation, jpeg_orientation
from core.io.policy import MAX_PIXELS, NO_SPACING_WARNING
from core.io.regular_file import read_regular
from core.io.sniff import JPEG_MAGIC, PNG_MAGIC, image_dimensions, read_head
from core.io.study import Study, WindowPreset

# 8-bit images display and feed the model exactly as stored: this LINEAR window is the identity.
STORED_8BIT_PRESET = WindowPreset(name="As stored (0–255)", center=128.0, width=256.0, function="LINEAR")
_ADVICE = "open a DICOM, PNG or JPEG file"


def read_image(path: str | Path) -> Study:
    """Open a PNG/JPEG as a grey study; StudyReadError for empty, damaged or unsupported files."""
    path = Path(path)
    head = read_head(path)
    fmt = "PNG" if head.startswith(PNG_MAGIC) else "JPEG" if head.startswith(JPEG_MAGIC) else ""
    if not fmt:
        raise StudyReadError(
            path,
            "not a PNG or JPEG image: the file does not start with a PNG/JPEG signature",
            _ADVICE,
        )
    try:
        raw = read_regular(path)
    except (OSError, ValueError) as exc:
        raise StudyReadError(
            path,
            f"the file could not be read ({type(exc).__name__})",
            "check the disk",
        ) from None
    data = np.frombuffer(raw, dtype=np.uint8)
    dims = image_dimensions(raw)
    if dims and dims[0] * dims[1] > MAX_PIXELS:
        raise StudyReadError(
            path,
            f"image size {dims[0]}x{dims[1]} is too large to open",
            "the header is probably damaged",
        )
    try:
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise StudyReadError(
            path,
            _decode_failure(fmt, data),
            "the copy or export was probably interrupted; copy it again",
        )
    if image.shape[0] * image.shape[1] > MAX_PIXELS:  # a size header the pre-check could not see
        raise StudyReadError(path, f"image size {image.shape[0]}x{image.shape[1]} is too large to open", "")
    if fmt == "JPEG":
        image = apply_orientation(image, jpeg_orientation(raw))
    warnings: list[str] = []
    grey = _to_grey(path, image, warnings)
    if grey.dtype == np.uint8:
        bits = 8
    elif grey.dtype == np.uint16:
        bits = 16
    else:
        raise StudyReadError(
            path,
            f"{fmt} sample type {grey.dtype} is not supported",
            "save it as 8- or 16-bit",
        )
    warnings.append(NO_SPACING_WARNING)
    return Study(
        path=path,
        pixels=np.ascontiguousarray(grey, dtype=np.float32),
        kind="image",
        photometric="MONOCHROME2",
        bits_stored=bits,
        window_presets=[STORED_8BIT_PRESET] if bits == 8 else [],
        warnings=warnings,
    )


def _to_grey(path: Path, image: np.ndarray, warnings: list[str]) -> np.ndarray:
    """HxW grey from cv2's HxW, HxWx1, HxWx2 (grey+alpha), BGR or BGRA."""
    if image.ndim == 2:
        return image
    if image.ndim != 3:
        raise StudyReadError(path, f"unsupported image layout {image.shape}", _ADVICE)
    channels = image.shape[2]
    if channels in (2, 4):
        alpha = image[..., -1]
        if alpha.min() < np.iinfo(alpha.dtype).max:
            warnings.append("transparency (alpha channel) ignored")
        image = image[..., :-1]
        channels -= 1
    if channels == 1:
        return image[..., 0]
    if channels != 3:
        raise StudyReadError(path, f"unsupported number of channels ({image.shape[2]})", _ADVICE)
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_BGR2GRAY)
    if _channels_differ(image):
        warnings.append("colour image converted to grey (luminance); check it is a radiograph")
    return grey


def _channels_differ(bgr: np.ndarray) -> bool:
    """True when colour carries information; grey images saved as RGB (JPEG chroma noise) don't."""
    tolerance = 8 * (257 if bgr.dtype == np.uint16 else 1)
    b, g, r = (bgr[..., i].astype(np.int32) for i in range(3))
    return bool(max(np.abs(b - g).max(), np.abs(g - r).max()) > tolerance)


def _decode_failure(fmt: str, data: np.ndarray) -> str:
    """The most specific reason we can give for a PNG/JPEG the decoder rejected."""
    raw = data.tobytes()
    if fmt == "PNG" and b"IEND" not in raw[-64:]:
        return f"PNG is truncated: the file ends before the image end ({len(raw)} bytes)"
    if fmt == "JPEG":
        last_scan = raw.rfind(b"\xff\xda")
        if last_scan < 0 or raw.rfind(b"\xff\xd9") < last_scan:
            return f"JPEG is truncated: no end-of-image marker after the image data ({len(raw)} bytes)"
    return f"{fmt} data could not be decoded: the file is corrupt or uses an unsupported variant"
