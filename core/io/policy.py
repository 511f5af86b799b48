"""What the product agrees to open, in one place, so both readers and the docs agree.

The model was trained on chest radiographs; the constants here decide which studies are opened,
opened with a warning, or refused (see ``core.io`` for the full policy).
"""

from __future__ import annotations

RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})

# Opened with a warning: often a radiograph, but the file does not say so.
UNCERTAIN_MODALITIES = {
    "": "modality not stated",
    "OT": "modality OT (other)",
    "SC": "modality SC (secondary capture)",
}

# X-ray modalities that are still refused: the images are radiographs, but never of a chest
# in the sense the model knows (named in the refusal so the message is not "not a radiograph").
OTHER_XRAY_MODALITIES = {
    "MG": "mammography",
    "IO": "intra-oral radiography",
    "PX": "panoramic X-ray",
    "XA": "X-ray angiography",
    "RF": "fluoroscopy",
    "BMD": "bone densitometry",
}

# BodyPartExamined values containing one of these words count as chest (CHEST, THORAX, LUNG,
# and variants such as "CHEST PA"); empty also counts as chest.
CHEST_WORDS = ("CHEST", "THORAX", "LUNG")


def not_chest(study) -> bool:
    """A DICOM whose BodyPartExamined is stated and is not chest-like (the viewer and ``segment`` warn)."""
    part = (getattr(study, "body_part", "") or "").upper()
    return bool(part) and not any(word in part for word in CHEST_WORDS)

# Refuse before decoding: a damaged header must not make the decoder allocate gigabytes.
MAX_PIXELS = 200_000_000

NO_SPACING_WARNING = "no pixel spacing: areas in pixels"
