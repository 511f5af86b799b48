"""Reading studies: DICOM radiographs and PNG/JPEG images, into one ``Study`` type.

Public entry points: ``load_study(path) -> Study`` (raises ``StudyReadError`` with a one-line,
actionable message for any bad input), ``display.render`` / ``display.default_presets`` (what the
user sees), ``model_input.model_gray`` (what the model sees), ``discover.find_study_files``.

Module map: ``sniff`` (first bytes, readable?), ``regular_file`` (never open a pipe), ``loader``
(dispatch by content), ``dicom_reader`` / ``image_reader`` (one format each), ``padding`` (Pixel
Padding Value), ``precision`` (float32 or float64), ``exif`` (JPEG orientation), ``redact`` (no
header values in messages), ``policy`` (what is opened), ``voi`` (PS3.3 VOI maths), ``display``,
``model_input``, ``discover``; for labelled sets: ``manifest`` (image/mask CSV), ``mask_file`` (reading a
mask), ``mask_labels`` (what its values mean); ``spacing`` (when a pixel spacing is usable).

Open / refuse policy (the model was made for chest X-rays):

- Opened: DICOM radiographs with modality CR, DX, DR or RG; with a warning when the modality is
  missing, OT or SC. PNG/JPEG images (8 or 16 bit) are opened as grey MONOCHROME2 images.
- Opened with a warning: a radiograph whose BodyPartExamined is set and not chest-like
  ("body part 'HAND' is not a chest; ... check the mask"); colour images (converted to grey
  luminance); no usable pixel spacing ("no pixel spacing: areas in pixels").
- Refused with StudyReadError: other modalities (US, MR, CT, NM, PT, ...; X-ray modalities that
  are never chest films, such as MG, XA, RF, IO, PX, are named as such), palette-colour
  images, multi-frame objects, images over 200 million pixels, files without pixel data, truncated
  or undecodable pixel data, transfer syntaxes with no installed decoder, empty or non-image files,
  folders, missing or unreadable files.
- Spacing comes from ImagerPixelSpacing, else PixelSpacing (zero/invalid values are ignored).
- Display: VOI LUT Sequence, else window (every file preset is offered, with its VOILUTFunction),
  else full range; inversion for MONOCHROME1 / Presentation LUT Shape INVERSE after VOI. Pixel
  padding is out of every data-driven range and black.
- Refused without blocking: named pipes, sockets and devices (only regular files are opened).
- Model input: the file's default VOI, else the 0.5–99.5 percentile window; 8-bit images unchanged.
"""

from core.io.errors import StudyReadError
from core.io.study import Study, StudyIdentifiers, WindowPreset

__all__ = ["Study", "StudyIdentifiers", "StudyReadError", "WindowPreset", "load_study"]


def __getattr__(name: str):
    """``load_study`` on first use: the readers import pydicom and OpenCV, which a process that only
    reads a manifest or a mask's labels (training from an example cache) never needs."""
    if name == "load_study":
        from core.io.loader import load_study

        return load_study
    raise AttributeError(f"module 'core.io' has no attribute {name!r}")
