"""The verdict of a clinic fine-tune: the new model against its parent on the same held-out images.

Kept apart from the training run (numpy and the statistics only, no torch) so the viewer's dialog and
the CLI read and word the same record the run wrote to ``comparison.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..evaluation.stats import paired_wilcoxon

if TYPE_CHECKING:
    from ..evaluation.runner import Evaluation

MIN_DICE_GAIN = 0.001  # a smaller mean gain is within INT8 re-export and selection noise: not "better"

WORSE_BY = 0.001  # a per-image drop smaller than this is export noise, not "worse"


def comparison_record(parent, baseline: "Evaluation", new: "Evaluation", about: dict | None = None) -> dict:
    """Both models on the same held-out images; ``better`` decides whether activation is offered.

    The verdict rests on images a reader drew or corrected: an *accepted* mask is the active model's
    own output and would favour it, so accepted images are scored and reported apart. Images are named
    by file, and the record says which data it is about (a gain on one clinic's convention can be a
    loss on another's).

    ``parent``: the ``ParentModel`` (its ``to_json()`` names the active model in the record).
    """
    new_by_id = {row["id"]: row for row in new.per_image}
    per_image = [{"image": a.get("image", a["id"]), "id": a["id"], "review": a.get("review", "reference"),
                  "active": a["dice"], "new": new_by_id[a["id"]]["dice"],
                  "difference": new_by_id[a["id"]]["dice"] - a["dice"]}
                 for a in baseline.per_image if a["id"] in new_by_id]
    judged = [row for row in per_image if row["review"] != "accepted"] or per_image
    accepted = [row for row in per_image if row["review"] == "accepted"]
    old_mean = float(np.mean([r["active"] for r in judged]))
    new_mean = float(np.mean([r["new"] for r in judged]))
    test = paired_wilcoxon([r["new"] for r in judged], [r["active"] for r in judged])
    better = bool(new_mean > old_mean + MIN_DICE_GAIN)
    worse = sorted((r for r in judged if r["difference"] < -WORSE_BY), key=lambda r: r["difference"])
    return {
        "prompt": "auto",
        "resolution": "full",
        "about": about or {},
        "images": len(judged),
        "accepted_images": len(accepted) if judged is not per_image else 0,
        "active_model": {**parent.to_json(), "dice_mean": old_mean,
                         "dice_median": float(np.median([r["active"] for r in judged]))},
        "new_model": {"dice_mean": new_mean, "dice_median": float(np.median([r["new"] for r in judged]))},
        "dice_difference_mean": new_mean - old_mean,
        "wilcoxon_p": test.p_value,
        "better_images": sum(r["difference"] > WORSE_BY for r in judged),
        "worse_images": [{"image": r["image"], "active": r["active"], "new": r["new"]} for r in worse],
        "accepted": ({"images": len(accepted), "active_dice_mean": float(np.mean([r["active"] for r in accepted])),
                      "new_dice_mean": float(np.mean([r["new"] for r in accepted]))}
                     if accepted and judged is not per_image else None),
        "better": better,
        "decision": ("better than the active model: offered for activation" if better else
                     "not better than the active model: the active model stays"),
        "per_image": per_image,
    }


def describe_comparison(comparison: dict) -> str:
    """The comparison in a few lines: data, means, p, wins and losses, and which images got worse."""
    old, new = comparison["active_model"]["dice_mean"], comparison["new_model"]["dice_mean"]
    about = comparison.get("about") or {}
    data = f" of {about['data']}" if about.get("data") else ""
    lines = [f"held-out comparison on {comparison['images']} images{data} the run did not train on "
             f"({about.get('heldout', 'held out')}; automatic mode, full resolution): "
             f"active {comparison['active_model']['name']} Dice {old:.4f} -> new model Dice {new:.4f} "
             f"(difference {new - old:+.4f}, paired Wilcoxon p = {comparison['wilcoxon_p']:.3g}); "
             f"{comparison['decision']}"]
    worse = comparison.get("worse_images") or []
    if "better_images" in comparison:
        lines.append(f"per image: {comparison['better_images']} better, {len(worse)} worse, "
                     f"{comparison['images'] - comparison['better_images'] - len(worse)} unchanged (within {WORSE_BY})")
    if worse:
        lines.append("worse: " + ", ".join(f"{w['image']} ({w['active']:.3f} -> {w['new']:.3f})" for w in worse[:10])
                     + (f" and {len(worse) - 10} more" if len(worse) > 10 else ""))
    accepted = comparison.get("accepted")
    if accepted:
        lines.append(f"{accepted['images']} accepted image(s) scored apart (their reference is the active model's own "
                     f"mask): {accepted['active_dice_mean']:.4f} -> {accepted['new_dice_mean']:.4f}")
    return "\n".join(lines)
