"""What ``adaqat evaluate`` prints beside its numbers: each row in one unit, and what NSD means.

A manifest may mix DICOM files that carry a pixel spacing (HD95 in millimetres, NSD at 2 mm) with
PNG/JPEG images that do not (HD95 in pixels, NSD at 2 px). Averaging millimetres with pixels gives a
number in no unit at all, so HD95 is summarised per unit ("hd95_mm", "hd95_px"), and NSD says which
tolerances went into it. Radiologists and physicists know Dice; NSD (normalized surface Dice) is
newer, so the command says in one sentence what it measures.
"""

from __future__ import annotations

from .summary import Summary, summarize

UNITS = ("mm", "px")


def unit_summaries(per_image: list[dict]) -> dict[str, Summary]:
    """Dice, IoU and NSD over every image; HD95 once per unit, over the images measured in it."""
    out = {metric: summarize([row[metric] for row in per_image]) for metric in ("dice", "iou", "nsd")}
    for unit in UNITS:
        values = [row["hd95"] for row in per_image if row.get("unit") == unit]
        if values:
            out[f"hd95_{unit}"] = summarize(values)
    return out


def _tolerances(per_image: list[dict]) -> str:
    found = sorted({(float(row["tolerance"]), row["unit"]) for row in per_image if "tolerance" in row})
    return " or ".join(f"{value:g} {unit}" for value, unit in found) or "2 mm"


def metric_notes(per_image: list[dict]) -> list[str]:
    """One line per metric family that needs saying, for the text report (and the JSON's ``notes``)."""
    tolerance = _tolerances(per_image)
    counts = {unit: sum(1 for row in per_image if row.get("unit") == unit) for unit in UNITS}
    where = []
    if counts["mm"]:
        where.append(f"in mm on the {counts['mm']} image(s) with a pixel spacing")
    if counts["px"]:
        where.append(f"in pixels on the {counts['px']} image(s) without one (PNG/JPEG)")
    hd = ("HD95: the 95th-percentile distance between the two lung outlines (the worst 5 % of the border "
          "ignored); " + ", ".join(where or ["no image scored"]) + (" (one row per unit)" if len(where) > 1 else ""))
    nsd = (f"NSD (normalized surface Dice) at {tolerance}: the share of both outlines, the model's and the "
           f"reference's, lying within {tolerance} of the other; 1.0 = the borders agree everywhere to within "
           f"{tolerance}, 0.9 = a tenth of the border is further off. It judges the edge only, where Dice is "
           "dominated by the bulk of the lung.")
    return [hd, nsd]
