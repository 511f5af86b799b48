"""Quality flags of an automatic mask, each with the reason a reader can check at a glance.

A confidence number says "look at this one"; a flag says what to look for. The thresholds are data,
stored with the confidence model (``core/segment/confidence_model.json``, chosen on val splits): shape
limits that a normal pair of lungs passes, and the confidence below which a mask is more likely wrong
than the reader's time is worth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

FLAG_TEXT = {
    "one_lung_missing": "one lung missing",
    "lower_border_ragged": "lower border ragged",
    "lung_small": "lung much smaller than usual",
    "low_confidence": "low confidence",
}
FLAG_ICON = "⚠"


@dataclass(frozen=True)
class QualityFlag:
    code: str  # one of FLAG_TEXT
    reason: str  # what the reader should look at, with the number behind it

    @property
    def text(self) -> str:
        return FLAG_TEXT.get(self.code, self.code)


@dataclass(frozen=True)
class MaskQuality:
    """Confidence in [0, 1] (probability that Dice >= 0.90) and the flags raised, of one mask."""

    confidence: float
    flags: tuple[QualityFlag, ...] = field(default_factory=tuple)

    @property
    def summary(self) -> str:
        """One line: "" when nothing is flagged, else the flags' short texts."""
        return ", ".join(flag.text for flag in self.flags)

    @property
    def reasons(self) -> str:
        return "\n".join(f"{flag.text}: {flag.reason}" for flag in self.flags)

    def to_json(self) -> str:
        return json.dumps([{"code": f.code, "reason": f.reason} for f in self.flags])

    @classmethod
    def from_stored(cls, confidence: float, flags_json: str) -> MaskQuality:
        try:
            items = json.loads(flags_json or "[]")
            flags = tuple(QualityFlag(str(i["code"]), str(i["reason"])) for i in items)
        except (ValueError, TypeError, KeyError):
            flags = ()
        return cls(float(confidence), flags)

    def as_dict(self) -> dict:
        return {"confidence": round(self.confidence, 4), "flags": [f.text for f in self.flags],
                "flag_reasons": [f.reason for f in self.flags]}


def assess(confidence: float, features: dict[str, float], thresholds: dict) -> MaskQuality:
    """Flags from the shape measurements and the confidence, against the fitted ``thresholds``."""
    flags: list[QualityFlag] = []
    side = features.get("side_ratio", 1.0)
    if side < thresholds.get("one_lung_side_ratio", 0.25):
        flags.append(QualityFlag("one_lung_missing", (
            f"one side of the image holds {side * 100:.0f} % of the other side's lung: check that both lungs are outlined")))
    rough = features.get("lower_border_roughness", 0.0)
    if rough > thresholds.get("ragged_lower_border", float("inf")):
        flags.append(QualityFlag("lower_border_ragged", (
            f"the lower border jumps {rough:.1f} px (of 256) from a smooth dome: check the bases and costophrenic angles")))
    fraction = features.get("lung_fraction", 1.0)
    usual = thresholds.get("usual_lung_fraction", 0.0)
    if fraction < thresholds.get("small_lung_fraction", 0.0):
        flags.append(QualityFlag("lung_small", (
            f"the mask covers {fraction * 100:.0f} % of the image (usually about {usual * 100:.0f} %): "
            "check for lung left out")))
    if confidence < thresholds.get("low_confidence", 0.0):
        flags.append(QualityFlag("low_confidence", (
            f"confidence {confidence:.2f}: much of the mask's border is uncertain, or the mask changes when "
            "the automatic prompt moves slightly: check the whole outline")))
    return MaskQuality(float(confidence), tuple(flags))


def images_that_teach_most(store, limit: int = 5) -> list[tuple[str, MaskQuality]]:
    """Unreviewed images with an automatic mask, least confident first: (display name, quality).

    The masks the model is least sure of are the ones it most often gets wrong, so a reader's
    correction of them carries the most new information for a fine-tune.
    """
    qualities = store.latest_qualities()
    names = {record.key: record.display_name for record in store.list_images() if record.status == "unreviewed"}
    ranked = sorted((qualities[key][0], key) for key in names if key in qualities)
    return [(names[key], MaskQuality.from_stored(*qualities[key])) for _confidence, key in ranked[:limit]]
