"""Score models on the selection and external sets, as the product runs them, with lung-shape checks.

Each image goes through the product's path (``manifest_images`` -> ``Predictor``, automatic prompt, full
resolution, ONNX Runtime for INT8 models that carry it). The probability map is computed once per image
and model; every post-processing variant is applied to that same map, so variants differ only by what
they do to it. Per image and variant the script records Dice, IoU, HD95, NSD and three shape checks a
radiologist's mask passes: one component per lung (``components`` <= 2), no holes (``holes`` = 0), and a
border no longer than the reader's (``perimeter_ratio`` = predicted / reference contour length; a ragged
border is longer).

The two ``val`` splits choose (model, checkpoint, post-processing); test splits and external sets are
reported only. Models are compared image by image (paired Wilcoxon signed-rank on Dice).

    # score (slow on a 2-core VM: ~600 images per model); results are cached per model and set
    python benchmarks/bench_external_sets.py score --model default --tag today
    python benchmarks/bench_external_sets.py score --model runs/multi/model-int8 --tag multi
    # table, Wilcoxon tests and per-image before/after plots (no model run)
    python benchmarks/bench_external_sets.py report --before today --after multi \
        --json-out benchmarks/results/external_sets.json --plots benchmarks/results/plots
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "external"

from core.evaluation.metrics import image_metrics  # noqa: E402
from core.evaluation.stats import paired_wilcoxon  # noqa: E402
from core.evaluation.summary import summarize  # noqa: E402
from core.segment import postprocess  # noqa: E402
from core.segment.predictor import THRESHOLD  # noqa: E402

# (key, data folder, splits, role): "select" sets may choose; "report" sets are never used to choose.
SETS = (
    ("cxr-lungs val", "cxr-lungs", ("val",), "select"),
    ("peds-lungs val", "peds-lungs", ("val",), "select"),
    ("clinic-sample all 50", "clinic-sample", ("train", "val"), "report"),
    ("cxr-lungs test", "cxr-lungs", ("test",), "report"),
    ("peds-lungs test", "peds-lungs", ("test",), "report"),
    ("shenzhen val", "shenzhen", ("val",), "report"),
)
EXTERNAL = ("clinic-sample all 50", "shenzhen val")  # hospitals no model here was trained on
RAGGED = 1.1  # a border 10 % longer than the reader's: ragged


def _smooth(binary: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """Gaussian-blur a 0/1 mask (sigma as a fraction of the image's longer side) and cut at one half."""
    sigma = max(1.0, sigma_fraction * max(binary.shape))
    blurred = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), sigma)
    return (blurred >= 0.5).astype(np.uint8) * 255


def _open_close(binary: np.ndarray, radius_fraction: float) -> np.ndarray:
    """Morphological opening (drops spurs) then closing (fills notches), elliptic element."""
    r = max(1, int(round(radius_fraction * max(binary.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    opened = cv2.morphologyEx(binary.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    return cv2.morphologyEx(opened, cv2.MORPH_CLOSE, kernel) * 255


def _variants() -> dict:
    """Post-processing candidates: probability map (float, [0, 1]) -> mask (uint8 0/255)."""
    def threshold(p):
        return (p > THRESHOLD).astype(np.uint8) * 255

    def product(p):  # what the viewer does today in automatic mode
        return postprocess.clean_lung_mask(threshold(p))

    out = {"threshold": threshold, "product": product}
    for fraction in (0.005, 0.01, 0.02):
        out[f"smooth{fraction:g}"] = lambda p, f=fraction: postprocess.clean_lung_mask(_smooth(product(p) > 0, f))
    for fraction in (0.005, 0.01):
        out[f"openclose{fraction:g}"] = lambda p, f=fraction: postprocess.clean_lung_mask(_open_close(product(p) > 0, f))
    if hasattr(postprocess, "smooth_lung_mask"):
        out["shipped_smooth"] = lambda p: postprocess.smooth_lung_mask(product(p))
    return out


def _perimeter(binary: np.ndarray) -> float:
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return float(sum(cv2.arcLength(c, True) for c in contours))


def shape_checks(mask: np.ndarray, truth: np.ndarray) -> dict:
    """Components (8-connected), holes (background regions not touching the border), contour length ratio."""
    binary = (mask > 0).astype(np.uint8)
    components = cv2.connectedComponents(binary, connectivity=8)[0] - 1
    padded = np.pad(1 - binary, 1, constant_values=1)
    background = cv2.connectedComponents(padded, connectivity=4)[0] - 1  # the outside is one of them
    reference = _perimeter(truth >= 192)
    return {"components": int(components), "holes": int(max(0, background - 1)),
            "perimeter_ratio": _perimeter(binary) / reference if reference else float("nan")}


def score(args) -> int:
    from core.evaluation.runner import manifest_images
    from core.models.loading import load_model
    from core.compute import set_threads
    from core.segment.predictor import Predictor
    from core.io.manifest import read_manifest

    set_threads(args.threads)
    loaded = load_model(args.model, device="cpu", runtime=args.runtime)
    predictor = Predictor(loaded)
    variants = _variants()
    out_dir = CACHE / args.tag
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "model.txt").write_text(f"{args.model}\n{loaded.info.label}\n")
    wanted = [entry for name in (args.sets or [k for k, *_ in SETS]) for entry in SETS if entry[0] == name]
    for key, folder, splits, _role in wanted:  # in the order asked for
        target = out_dir / (key.replace(" ", "_") + ".json")
        done = json.loads(target.read_text()) if target.is_file() else {"rows": []}
        seen = {row["id"] for row in done["rows"]}
        manifest = read_manifest(DATA / folder / "manifest.csv")
        samples = [s for s in manifest.samples if s.split in splits and s.id not in seen][: args.limit]
        problems: list[str] = []
        start = time.perf_counter()
        probabilities = {}
        for index, item in enumerate(manifest_images(samples, problems)):
            t0 = time.perf_counter()
            predictor.set_image(item.gray)
            probability = predictor.predict(clean=False).probability
            seconds = time.perf_counter() - t0
            row = {"id": item.id, "shape": list(item.gray.shape), "seconds": round(seconds, 3)}
            for name, make in variants.items():
                mask = make(probability)
                row[name] = {**image_metrics(mask, item.truth, spacing_mm=item.spacing_mm).as_dict(),
                             **shape_checks(mask, item.truth)}
            done["rows"].append(row)
            probabilities[item.id] = np.round(probability * 255).astype(np.uint8)
            if (index + 1) % 10 == 0:
                target.write_text(json.dumps(done))
                print(f"  {key}: {index + 1}/{len(samples)} ({time.perf_counter() - start:.0f} s)", flush=True)
        done["problems"] = done.get("problems", []) + problems
        target.write_text(json.dumps(done))
        if probabilities:  # the maps, 8-bit, so that later variants need no model run
            np.savez_compressed(out_dir / (key.replace(" ", "_") + f".prob{len(seen)}.npz"), **probabilities)
        product = [r["product"]["dice"] for r in done["rows"]]
        print(f"{key}: {len(done['rows'])} images, product Dice {np.mean(product):.4f}, "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    return 0


FROZEN = ROOT / "benchmarks" / "results"


def _load(tag: str) -> dict:
    """Per-image rows of a scored model: runs/external/<tag>/ (this machine), else its frozen copy."""
    out = {}
    for key, *_ in SETS:
        path = CACHE / tag / (key.replace(" ", "_") + ".json")
        if path.is_file():
            out[key] = {row["id"]: row for row in json.loads(path.read_text())["rows"]}
    frozen = FROZEN / f"external_sets_{tag}.json"
    if frozen.is_file():
        for key, rows in json.loads(frozen.read_text())["sets"].items():
            out.setdefault(key, {row["id"]: row for row in rows})
    return out


def freeze(args) -> int:
    """Keep a model's per-image rows in the repository (runs/ is not kept): rounded, no probability maps."""
    def rounded(value):
        if isinstance(value, float):
            return round(value, 5)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items() if k not in ("unit", "tolerance")}
        return value

    loaded = _load(args.tag)
    model = (CACHE / args.tag / "model.txt").read_text().split("\n")[:2] if (CACHE / args.tag / "model.txt").is_file() else []
    data = {"tag": args.tag, "model": model, "protocol": "automatic prompt, full resolution, HD95 in px (NSD at 2 px), "
            "this repository's benchmarks/bench_external_sets.py score", "machine": args.machine,
            "sets": {key: [rounded(row) for row in rows.values()] for key, rows in loaded.items()}}
    target = FROZEN / f"external_sets_{args.tag}.json"
    target.write_text(json.dumps(data, separators=(",", ":")))
    print(f"{target}: " + ", ".join(f"{k} {len(v)}" for k, v in data["sets"].items()))
    return 0


def _mean(rows: list[dict], variant: str, metric: str) -> float:
    values = [r[variant][metric] for r in rows]
    return float(np.nanmean(values)) if values else float("nan")


def _shape_summary(rows: list[dict], variant: str) -> dict:
    return {"plausible_components": float(np.mean([r[variant]["components"] <= 2 for r in rows])),
            "two_components": float(np.mean([r[variant]["components"] == 2 for r in rows])),
            "no_holes": float(np.mean([r[variant]["holes"] == 0 for r in rows])),
            "perimeter_ratio_median": float(np.nanmedian([r[variant]["perimeter_ratio"] for r in rows])),
            "ragged": float(np.mean([r[variant]["perimeter_ratio"] > RAGGED for r in rows]))}


def report(args) -> int:
    before = _load(args.before)
    after = _load(args.after) if args.after else None
    result = {"before": args.before, "after": args.after, "variant": args.variant, "sets": {}, "variants": {}}
    # post-processing variants of the "before" model, against what the viewer does today
    names = list(next(iter(next(iter(before.values())).values())).keys() - {"id", "shape", "seconds"})
    names = sorted(names, key=lambda n: (n != "threshold", n != "product", n))
    print(f"Post-processing variants ({args.before}), mean Dice; diff vs product and paired Wilcoxon p")
    for key, *_rest in SETS:
        if key not in before:
            continue
        rows = list(before[key].values())
        base = [r["product"]["dice"] for r in rows]
        entry = {}
        for name in names:
            values = [r[name]["dice"] for r in rows]
            test = paired_wilcoxon(values, base)
            entry[name] = {"dice": float(np.mean(values)), "hd95_median": float(np.nanmedian([r[name]["hd95"] for r in rows])),
                           "diff_vs_product": test.mean_difference, "p": test.p_value, **_shape_summary(rows, name)}
        result["variants"][key] = entry
        print(f"  {key} (n={len(rows)}): " + ", ".join(
            f"{n} {e['dice']:.4f} ({e['diff_vs_product']:+.4f}, p={e['p']:.2g}; 1-2 comp {e['plausible_components']:.0%}, "
            f"2 comp {e['two_components']:.0%}, HD95 med {e['hd95_median']:.1f}, "
            f"no holes {e['no_holes']:.0%}, perim {e['perimeter_ratio_median']:.3f}, ragged {e['ragged']:.0%})"
            for n, e in entry.items()))
    if after is None:
        Path(args.json_out).write_text(json.dumps(result, indent=1)) if args.json_out else None
        return 0
    print(f"\n| set | n | {args.before} | {args.after} | difference | Wilcoxon p |\n|---|---:|---:|---:|---:|---:|")
    for key, *_rest, role in SETS:
        if key not in before or key not in after:
            continue
        ids = sorted(before[key].keys() & after[key].keys())
        a = [after[key][i][args.variant]["dice"] for i in ids]
        b = [before[key][i][args.variant]["dice"] for i in ids]
        test = paired_wilcoxon(a, b)
        result["sets"][key] = {"role": role, "n": len(ids), "ids": ids, "before": b, "after": a,
                               "before_summary": summarize(b).as_dict(), "after_summary": summarize(a).as_dict(),
                               "wilcoxon": test.as_dict()}
        print(f"| {key} ({role}) | {len(ids)} | {np.mean(b):.4f} | {np.mean(a):.4f} | {test.mean_difference:+.4f} | {test.p_value:.2g} |")
        if args.plots and key in EXTERNAL + ("peds-lungs test", "cxr-lungs test"):
            _plot(Path(args.plots), key, b, a, args.before, args.after)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1, default=float))
    return 0


def _plot(folder: Path, key: str, before: list[float], after: list[float], name_before: str, name_after: str) -> None:
    """Per-image Dice before (x) and after (y): points above the diagonal improved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    low = min(min(before), min(after)) - 0.01
    ax.plot([low, 1], [low, 1], color="0.6", lw=1)
    ax.scatter(before, after, s=14, alpha=0.75)
    ax.set_xlim(low, 1), ax.set_ylim(low, 1)
    ax.set_xlabel(f"Dice, {name_before}"), ax.set_ylabel(f"Dice, {name_after}")
    ax.set_title(f"{key}: per-image Dice (n={len(before)})", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / f"external_{key.replace(' ', '_')}_{name_before}_vs_{name_after}.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--model", default="default")
    s.add_argument("--tag", required=True, help="folder name under runs/external for this model's results")
    s.add_argument("--sets", nargs="*", default=None, help="set keys to score (default: all)")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnxruntime"))
    r = sub.add_parser("report")
    r.add_argument("--before", required=True)
    r.add_argument("--after", default=None)
    r.add_argument("--variant", default="product", help="post-processing compared between models")
    r.add_argument("--json-out", default=None)
    r.add_argument("--plots", default=None)
    f = sub.add_parser("freeze")
    f.add_argument("--tag", required=True)
    f.add_argument("--machine", default="", help="where the rows were scored (recorded with them)")
    args = parser.parse_args(argv)
    return {"score": score, "report": report, "freeze": freeze}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
