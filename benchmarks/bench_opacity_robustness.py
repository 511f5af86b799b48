"""How a model copes with opaque lung bases: cxr-lungs val, synthetic-opacity val, cxr-lungs test, clinic val.

Every set is scored at full image resolution in automatic mode (whole-image box), through
``core.evaluation.runner`` exactly as ``adaqat evaluate`` scores it. The synthetic-opacity set is the
cxr-lungs ``val`` films with one simulated basal opacity each (``core.training.augment.opacify_gray``,
always applied, fixed seed), masks unchanged: with cxr-lungs val it is the selection set. cxr-lungs
``test`` and clinic-sample ``val`` (another hospital, radiologists outline the anatomical lung) are
reported, never used to choose anything. Each model after the first is compared with the first
(paired Wilcoxon signed-rank on per-image Dice).

    python benchmarks/bench_opacity_robustness.py [--model default] [--model runs/x/model-int8 ...]
        [--sets val synthetic test clinic] [--json-out benchmarks/results/opacity_robustness.json]
        [--reuse earlier.json ...]   # per-image results of the same weights (sha256) and set are not recomputed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ADAQAT_SHARED_DATA", ROOT.parent / "shared" / "data"))

from core.evaluation.runner import Evaluation, HeldOutImage, compare, evaluate_images, manifest_images  # noqa: E402
from core.models.loading import load_model  # noqa: E402
from core.training.augment import AugmentConfig, opacify_gray  # noqa: E402
from core.io.manifest import read_manifest  # noqa: E402

SYNTHETIC_SEED = 20261202
SYNTHETIC = AugmentConfig(opacity_probability=1.0)  # the training augmentation's opacity, every film
SETS = {
    "val": ("cxr-lungs val", "cxr-lungs", "val"),
    "synthetic": ("cxr-lungs val + synthetic opacity", "cxr-lungs", "val"),
    "test": ("cxr-lungs test", "cxr-lungs", "test"),
    "clinic": ("clinic-sample val", "clinic-sample", "val"),
}


def synthetic_opacity(images: list[HeldOutImage]) -> list[HeldOutImage]:
    """The same films with a simulated basal opacity each (seeded per image); masks unchanged."""
    return [HeldOutImage(item.id, opacify_gray(item.gray, item.truth, np.random.default_rng((SYNTHETIC_SEED, index)), SYNTHETIC),
                         item.truth, item.spacing_mm)
            for index, item in enumerate(images)]


def load_sets(names: list[str]) -> dict[str, list[HeldOutImage]]:
    loaded = {}
    for name in names:
        _, folder, split = SETS[name]
        problems: list[str] = []
        images = list(manifest_images(read_manifest(DATA / folder / "manifest.csv").split(split), problems))
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        loaded[name] = synthetic_opacity(images) if name == "synthetic" else images
    return loaded


def model_label(loaded, given: str) -> str:
    return f"{given} ({loaded.info.name} {loaded.info.version})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None, help="model name or folder (repeat; first = reference)")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "opacity_robustness.json")
    parser.add_argument("--reuse", nargs="+", type=Path, default=[], help="earlier JSON outputs of this script")
    args = parser.parse_args()
    models = args.model or ["default"]
    earlier = reusable(args.reuse)
    sets = {}
    results, reference = [], None
    for given in models:
        loaded = load_model(given)
        row = {"model": given, "name": loaded.info.name, "version": loaded.info.version,
               "weights_sha256": loaded.info.weights_sha256, "sets": {}}
        for name in args.sets:
            started = time.perf_counter()
            rows = earlier.get((loaded.info.weights_sha256, name))
            if rows is not None:
                evaluation = Evaluation(loaded.info.label, "auto", rows, [])
            else:
                if name not in sets:
                    sets.update(load_sets([name]))
                evaluation = evaluate_images(loaded, sets[name], "auto")
            summary = evaluation.summaries()
            entry = {"images": len(evaluation.per_image), "dice_mean": summary["dice"].mean,
                     "dice_median": summary["dice"].median, "hd95_median": summary["hd95"].median,
                     "seconds": round(time.perf_counter() - started, 1), "reused": rows is not None,
                     "per_image": evaluation.per_image}
            if reference is not None:
                test = compare(evaluation, reference["evaluations"][name])
                entry["vs_reference"] = {"mean_difference": test["mean_difference"], "wilcoxon_p": test["p_value"], "n": test["n"]}
            row["sets"][name] = entry
            row.setdefault("evaluations", {})[name] = evaluation
            print(f"{model_label(loaded, given)} | {SETS[name][0]}: Dice {entry['dice_mean']:.4f}"
                  + (f" ({entry['vs_reference']['mean_difference']:+.4f}, p = {entry['vs_reference']['wilcoxon_p']:.3g})"
                     if "vs_reference" in entry else ""), file=sys.stderr, flush=True)
        reference = reference or row
        results.append(row)
    print_table(results, args.sets)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "what": "Dice at full resolution, automatic prompt (whole-image box); first model = reference for paired Wilcoxon",
        "sets": {name: SETS[name][0] for name in args.sets},
        "synthetic": {"seed": SYNTHETIC_SEED, "config": {k: v for k, v in vars(SYNTHETIC).items() if k.startswith("opacity")}},
        "machine": f"{platform.node()} {platform.machine()} ({os.cpu_count()} cores)",
        "reused_from": [{"file": str(path), "machine": json.loads(path.read_text(encoding="utf-8")).get("machine")}
                        for path in args.reuse],
        "results": [{k: v for k, v in row.items() if k != "evaluations"} for row in results],
    }, indent=1, default=float), encoding="utf-8")
    print(f"\nwritten {args.json_out}")
    return 0


def reusable(paths: list[Path]) -> dict[tuple[str, str], list[dict]]:
    """(weights sha256, set) -> per-image rows, from earlier runs of this script."""
    found = {}
    for path in paths:
        for row in json.loads(path.read_text(encoding="utf-8"))["results"]:
            for name, entry in row["sets"].items():
                found[(row["weights_sha256"], name)] = entry["per_image"]
    return found


def print_table(results: list[dict], names: list[str]) -> None:
    header = ["model"] + [SETS[n][0] for n in names]
    lines = [header, ["---"] * len(header)]
    for row in results:
        cells = [f"{row['name']} ({row['model']})"]
        for name in names:
            entry = row["sets"][name]
            cell = f"{entry['dice_mean']:.4f}"
            if "vs_reference" in entry:
                cell += f" ({entry['vs_reference']['mean_difference']:+.4f}, p={entry['vs_reference']['wilcoxon_p']:.2g})"
            cells.append(cell)
        lines.append(cells)
    print("\n".join("| " + " | ".join(line) + " |" for line in lines))


if __name__ == "__main__":
    sys.exit(main())
