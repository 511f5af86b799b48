"""Does the mask confidence find the masks a radiologist must fix? Fit on val splits, report on others.

Each image goes through the product's path (``manifest_images`` -> ``Predictor``, automatic prompt, full
resolution, ONNX Runtime for the INT8 default model). Per image the script records the raw confidence
features (``core.segment.confidence.measure``: decoder IoU prediction, probability margin, agreement with
prompt variants, lung shape), the time of the mask with and without them, and the Dice with the reader's
mask. Features are cached per set (``runs/confidence/``), so fitting and reporting do not rerun the model.

    # 1. features on the fitting sets (val splits only; shenzhen train is allowed too, its val is reported)
    python benchmarks/bench_confidence.py collect --sets fit
    # 2. fit the combination and the flag thresholds on them -> core/segment/confidence_model.json
    python benchmarks/bench_confidence.py fit
    # 3. features on the reported sets, then the table, JSON and scatter plot (never used to fit)
    python benchmarks/bench_confidence.py collect --sets report
    python benchmarks/bench_confidence.py report [--json-out benchmarks/results/confidence.json]

Reported per set: Spearman correlation of confidence with Dice, how many masks with Dice < 0.90 are
flagged (any quality flag), the share of all masks flagged, and the median extra time of the confidence.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "confidence"
sys.path.insert(0, str(ROOT))

from core.evaluation.metrics import dice  # noqa: E402
from core.evaluation.runner import manifest_images  # noqa: E402
from core.models.loading import load_model  # noqa: E402
from core.review.quality_flags import assess  # noqa: E402
from core.segment.confidence import (  # noqa: E402
    MODEL_FILE, VARIANT_INSETS, ConfidenceModel, measure, measure_variants, transform)
from core.segment.predictor import Predictor  # noqa: E402
from core.training.manifest import read_manifest  # noqa: E402

# (name, data folder, splits, role). "fit" sets may be used to fit; "report" sets never are.
SETS = (
    ("clinic-sample val", "clinic-sample", ("val",), "fit"),
    ("cxr-lungs val", "cxr-lungs", ("val",), "fit"),
    ("peds-lungs val", "peds-lungs", ("val",), "fit"),
    ("clinic-sample all 50", "clinic-sample", ("train", "val"), "report"),
    ("shenzhen val", "shenzhen", ("val",), "report"),
    ("peds-lungs test", "peds-lungs", ("test",), "report"),
)
LOW_DICE = 0.90

# The terms of the fitted model (see core.segment.confidence.transform for the prefixes), chosen by 5-fold
# cross-validation on the fitting sets (Spearman of -prediction with Dice; 2026-12-05, 160 val images):
#   uncertain + soft Dice                               0.675   <- chosen
#   + box variant "inset_bottom_right" (1 decoder run)  0.681   (+0.006: within noise, not worth ~5-10 % time)
#   + decoder IoU prediction                            0.667
#   + shape terms (side ratio, roughness, ...)          0.665-0.671 (shape is used by the flags instead)
TERMS = (
    "log_uncertain_fraction",
    "log1m_soft_dice",
)
FIT_VARIANTS: tuple[str, ...] = ()
RIDGE = 1.0


def _cache_path(name: str) -> Path:
    return CACHE / (name.replace(" ", "_") + ".json")


def collect(names: list[str], model_name: str, variants: tuple[str, ...], limit: int | None) -> None:
    loaded = load_model(model_name)
    predictor = Predictor(loaded)
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, folder, splits, _role in SETS:
        if name not in names:
            continue
        samples = [s for s in read_manifest(DATA / folder / "manifest.csv").samples if s.split in splits][:limit]
        problems: list[str] = []
        rows = []
        started = time.perf_counter()
        for item in manifest_images(samples, problems):
            t0 = time.perf_counter()
            predictor.set_image(item.gray)
            result = predictor.predict()
            mask_seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            low = predictor.last_low_res_probability()
            features = measure(predictor, result.iou_prediction, low, result.mask, ())
            base = time.perf_counter() - t1
            variant_seconds = {}
            for variant in variants:  # timed one by one: the report charges only the variants the model uses
                t2 = time.perf_counter()
                features.update(measure_variants(predictor, low, (variant,)))
                variant_seconds[variant] = time.perf_counter() - t2
            extra = base + sum(variant_seconds.values())
            rows.append({"id": item.id, "dice": dice(result.mask, item.truth), "mask_seconds": mask_seconds,
                         "confidence_seconds": extra, "base_feature_seconds": base, "variant_seconds": variant_seconds,
                         "features": features})
            print(f"{name}: {len(rows)}/{len(samples)} dice {rows[-1]['dice']:.3f} "
                  f"(+{extra * 1000:.0f} ms of {mask_seconds * 1000:.0f})", flush=True)
            if len(rows) % 10 == 0 or len(rows) == len(samples):  # partial results survive an interrupted run
                _cache_path(name).write_text(json.dumps({
                    "set": name, "model": loaded.info.label, "variants": list(variants), "rows": rows,
                    "problems": problems, "complete": len(rows) + len(problems) >= len(samples),
                    "seconds": time.perf_counter() - started}, indent=1))


def _load(name: str) -> dict:
    path = _cache_path(name)
    if not path.is_file():
        raise SystemExit(f"error: {path}: no features for '{name}' (run: bench_confidence.py collect first)")
    return json.loads(path.read_text())


def _rank(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):  # average ranks of ties
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def fit(names: list[str]) -> dict:
    rows = [row for name in names for row in _load(name)["rows"]]
    usual = float(np.median([row["features"]["lung_fraction"] for row in rows]))
    terms = tuple(t.format(usual=f"{usual:.4f}") for t in TERMS)
    x = np.array([[transform(row["features"], t) for t in terms] for row in rows])
    y = np.array([math.log(max(1e-3, 1.0 - row["dice"])) for row in rows])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    a = np.hstack([z, np.ones((len(z), 1))])
    penalty = RIDGE * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    coef = np.linalg.solve(a.T @ a + penalty, a.T @ y)
    residual = y - a @ coef
    residual_scale = float(residual.std() * math.sqrt(3) / math.pi)  # logistic scale with that spread
    model = {
        "about": "Confidence of an automatic lung mask: linear model of log(1 - Dice) on the terms below "
                 "(core/segment/confidence.py), fitted by benchmarks/bench_confidence.py fit on val splits only.",
        "terms": list(terms), "mean": mean.tolist(), "scale": scale.tolist(), "weights": coef[:-1].tolist(),
        "bias": float(coef[-1]), "residual_scale": residual_scale, "dice_threshold": LOW_DICE,
        "variants": list(FIT_VARIANTS), "fitted_on": names, "images": len(rows),
        "flags": {}, "model": _load(names[0])["model"],
    }
    scores = [ConfidenceModel.from_dict(model).score(row["features"]) for row in rows]
    model["flags"] = choose_flag_thresholds(rows, scores, usual)
    return model


def choose_flag_thresholds(rows: list[dict], scores: list[float], usual_fraction: float) -> dict:
    """Shape flags at anatomical limits (rare on val), the confidence cut at the val share flagged aim."""
    fractions = np.array([r["features"]["lung_fraction"] for r in rows])
    rough = np.array([r["features"]["lower_border_roughness"] for r in rows])
    flags = {
        "one_lung_side_ratio": 0.25,  # one half of the image holds under a quarter of the other's lung
        "small_lung_fraction": round(float(min(0.5 * usual_fraction, np.percentile(fractions, 2))), 4),
        "usual_lung_fraction": round(usual_fraction, 4),
        "ragged_lower_border": round(float(max(np.percentile(rough, 97), 1.5)), 3),
    }
    dices = np.array([r["dice"] for r in rows])
    scores = np.array(scores)
    best = None
    for cut in np.linspace(0.05, 0.95, 91):
        flagged = scores < cut
        share = flagged.mean()
        caught = flagged[dices < LOW_DICE].mean() if (dices < LOW_DICE).any() else 1.0
        if share <= 0.15 and (best is None or caught > best[1] or (caught == best[1] and share < best[2])):
            best = (float(cut), float(caught), float(share))
    flags["low_confidence"] = round(best[0] if best else 0.5, 3)
    return flags


def report(names: list[str], json_out: Path | None, plot: Path | None) -> dict:
    from core.segment.confidence import load_confidence_model

    model = load_confidence_model(MODEL_FILE)
    table = []
    points = []
    for name in names:
        if not _cache_path(name).is_file():
            print(f"{name}: no features collected yet; left out")
            continue
        data = _load(name)
        rows = data["rows"]
        dices = np.array([r["dice"] for r in rows])
        quality = [assess(model.score(r["features"]), r["features"], model.flags) for r in rows]
        conf = np.array([q.confidence for q in quality])
        flagged = np.array([bool(q.flags) for q in quality])
        low = dices < LOW_DICE
        extra = np.array([_extra_seconds(r, model.variants) for r in rows])
        mask_s = np.array([r["mask_seconds"] for r in rows])
        by_flag: dict[str, int] = {}
        for q in quality:
            for flag in q.flags:
                by_flag[flag.code] = by_flag.get(flag.code, 0) + 1
        table.append({
            "set": name, "images": len(rows), "complete": bool(data.get("complete", True)),
            "median_dice": float(np.median(dices)),
            "spearman_confidence_dice": spearman(conf, dices),
            "spearman_iou_prediction_dice": spearman([r["features"]["iou_prediction"] for r in rows], dices),
            "low_dice_masks": int(low.sum()), "low_dice_flagged": int((flagged & low).sum()),
            "low_dice_flagged_share": float(flagged[low].mean()) if low.any() else None,
            "flagged_share": float(flagged.mean()), "flags": by_flag,
            "median_extra_ms": float(np.median(extra) * 1000), "median_mask_ms": float(np.median(mask_s) * 1000),
            "median_extra_share": float(np.median(extra / mask_s)),
        })
        points.append((name, dices, conf, flagged))
    print(f"confidence model fitted on: {', '.join(model.fitted_on)}; mask model: {_load(names[0])['model']}; "
          f"terms: {', '.join(model.terms)}; variants: {', '.join(model.variants) or 'none'}")
    header = f"{'set':<22}{'n':>5}{'med Dice':>10}{'rho conf':>10}{'rho IoU':>9}{'Dice<.90':>10}{'flagged':>9}{'% flagged':>11}{'+time':>8}"
    print(header)
    for row in table:
        caught = f"{row['low_dice_flagged']}/{row['low_dice_masks']}"
        print(f"{row['set'] + ('' if row['complete'] else ' (part)'):<22}{row['images']:>5}{row['median_dice']:>10.3f}{row['spearman_confidence_dice']:>10.2f}"
              f"{row['spearman_iou_prediction_dice']:>9.2f}{row['low_dice_masks']:>10}{caught:>9}"
              f"{row['flagged_share'] * 100:>10.1f}%{row['median_extra_share'] * 100:>7.1f}%")
    out = {"model": _load(names[0])["model"], "fitted_on": list(model.fitted_on), "low_dice": LOW_DICE, "sets": table}
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(out, indent=2))
    if plot:
        _scatter(points, plot)
    return out


def _extra_seconds(row: dict, variants) -> float:
    """Time the confidence adds to this mask with the fitted model's variants (all that the product runs)."""
    if "variant_seconds" not in row:
        return row["confidence_seconds"]
    return row["base_feature_seconds"] + sum(row["variant_seconds"][v] for v in variants)


def _scatter(points, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 4), sharey=True)
    for ax, (name, dices, conf, flagged) in zip(np.atleast_1d(axes), points):
        ax.scatter(conf[~flagged], dices[~flagged], s=12, c="tab:blue", label="not flagged")
        ax.scatter(conf[flagged], dices[flagged], s=18, c="tab:red", marker="x", label="flagged")
        ax.axhline(LOW_DICE, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{name} (rho {spearman(conf, dices):.2f})")
        ax.set_xlabel("confidence")
        ax.set_xlim(-0.02, 1.02)
    np.atleast_1d(axes)[0].set_ylabel("Dice with the reader's mask")
    np.atleast_1d(axes)[0].legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--sets", default="fit", help="fit, report, or a comma-separated list of set names")
    c.add_argument("--model", default="default")
    c.add_argument("--variants", default="all", help="'all' (to choose), or the comma-separated variants to run")
    c.add_argument("--limit", type=int, default=None)
    f = sub.add_parser("fit")
    f.add_argument("--out", type=Path, default=MODEL_FILE)
    r = sub.add_parser("report")
    r.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "confidence.json")
    r.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "results" / "plots" / "confidence_vs_dice.png")
    args = parser.parse_args(argv)
    fit_sets = [s[0] for s in SETS if s[3] == "fit"]
    report_sets = [s[0] for s in SETS if s[3] == "report"]
    if args.command == "collect":
        names = {"fit": fit_sets, "report": report_sets}.get(args.sets) or args.sets.split(",")
        variants = tuple(VARIANT_INSETS) if args.variants == "all" else tuple(v for v in args.variants.split(",") if v)
        collect(names, args.model, variants, args.limit)
    elif args.command == "fit":
        model = fit(fit_sets)
        args.out.write_text(json.dumps(model, indent=1) + "\n")
        print(json.dumps({k: model[k] for k in ("terms", "weights", "bias", "residual_scale", "flags")}, indent=1))
    else:
        report(report_sets, args.json_out, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
