"""The in-memory form of one opened image, shared by the engine, the CLI and the viewer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class WindowPreset:
    """A VOI window: centre/width in modality units, and the DICOM VOI LUT function."""

    name: str
    center: float
    width: float
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID


@dataclass(frozen=True)
class StudyIdentifiers:
    """Patient/study/series identifiers for the study browser. Never log these."""

    patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    study_instance_uid: str = ""
    study_description: str = ""
    study_date: str = ""
    series_instance_uid: str = ""
    series_description: str = ""
    sop_instance_uid: str = ""
    accession_number: str = ""


@dataclass
class Study:
    """One 2-D image, opened.

    ``pixels`` holds modality values (after the modality LUT / rescale), HxW, float32 (float64
    when float32 would round them: 32-bit data, see ``core.io.precision``); the display path (VOI,
    inversion) and the model-input path (``core.io.model_input``) both start from it and never
    write back into it. ``padding`` is True where the file's Pixel Padding Value says nothing was
    imaged: left out of every data-driven range and shown black.
    """

    path: Path
    pixels: np.ndarray
    kind: str  # "dicom" or "image"
    padding: np.ndarray | None = None  # bool HxW, True = padding (Pixel Padding Value / Range Limit)
    photometric: str = "MONOCHROME2"  # MONOCHROME1 means higher values are darker
    presentation_inverse: bool = False  # Presentation LUT Shape INVERSE
    modality: str = ""
    body_part: str = ""
    view_position: str = ""
    patient_orientation: tuple[str, ...] = ()  # (0020,0020): directions of the rows and columns, e.g. ("L", "F")
    bits_stored: int = 8
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    spacing_source: str = "none"  # "ImagerPixelSpacing", "PixelSpacing" or "none"
    window_presets: list[WindowPreset] = field(default_factory=list)
    voi_lut: np.ndarray | None = None  # first VOI LUT Sequence item, if any
    voi_lut_first_mapped: int = 0
    voi_lut_bits: int = 16  # output depth of the VOI LUT (third LUT Descriptor value)
    identifiers: StudyIdentifiers = field(default_factory=StudyIdentifiers)
    warnings: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def inverted(self) -> bool:
        """True when the values must be inverted after VOI to look like a normal radiograph.

        MONOCHROME1 and Presentation LUT Shape INVERSE describe the same inversion (DX objects
        carry both), so either one inverts, once.
        """
        return self.photometric == "MONOCHROME1" or self.presentation_inverse

    @property
    def display_name(self) -> str:
        return self.path.name
