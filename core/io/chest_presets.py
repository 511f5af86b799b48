"""Window presets a chest reader expects: lung, mediastinum, bone, soft tissue.

Projection radiographs have no Hounsfield scale: the same lung is 40..90 in an 8-bit JPEG-in-DICOM
and 9,000..12,000 in a 15-bit CR, and the share of the range taken by air outside the patient
varies from film to film, so fixed numbers or fixed fractions of the bit depth fail (a 15-bit file's
default window C 15000 / W 30000 is what looks washed out). Each preset is therefore a band of the
image's own histogram, counted in *on-screen brightness* order (0 % = darkest pixel as a
MONOCHROME2 reader sees it): percentiles of its modality values (after Rescale Slope/Intercept or
the Modality LUT, so the file's bit depth and modality LUT set the numbers), padding left out, and
mirrored for MONOCHROME1 files so that "Lung" gives the lungs the same contrast on every file.

The bands follow the order of attenuation on a chest film: air and aerated lung darkest, then soft
tissue and the mediastinum, bone brightest. They were chosen by looking at the shared CR files
(15-bit MONOCHROME1 and 8-bit MONOCHROME2) side by side.
"""

from __future__ import annotations

from core.io.study import Study, WindowPreset
from core.io.voi import percentile_window

# name: (low, high) percentiles of on-screen brightness
CHEST_BANDS: dict[str, tuple[float, float]] = {
    "Lung": (2.0, 68.0),  # the lungs spread over the grey scale: vessels, fissures, the lung edge
    "Mediastinum": (35.0, 99.5),  # through the heart and mediastinum: tubes, lines, retrocardiac lung
    "Bone": (55.0, 99.8),  # spine, ribs and clavicles where they are densest
    "Soft tissue": (10.0, 99.5),  # chest wall and soft tissue: a wide, gentle window
}


def chest_presets(study: Study) -> list[WindowPreset]:
    """The four chest presets for this image, as LINEAR_EXACT windows in its modality values."""
    presets = []
    for name, (low, high) in CHEST_BANDS.items():
        if study.inverted:  # higher values are shown darker: count the percentiles from the other end
            low, high = 100.0 - high, 100.0 - low
        presets.append(WindowPreset(name, *percentile_window(study.pixels, low, high, study.padding)))
    return presets
