"""Does the mask confidence find the masks a radiologist must fix? Fit on val splits, report on others.

Each image goes through the product's path (``manifest_images`` -> ``Predictor``, automatic prompt, full
resolution, ONNX Runtime for the INT8 default model). Per image the script records the raw confidence
features (``core.segment.confidence.measure``: decoder IoU prediction, probability margin, agreement with
prompt variants, lung shape), the time of the mask with and without them, and the Dice with the reader's
mask. Features are cached per set (``runs/confidence/``), so fitting and reporting do not rerun the model.

    # 1. features on the fitting sets (cxr-lungs val, peds-lungs val)
    python benchmarks/bench_confidence.py collect --sets fit
    # 2. choose the terms, fit the combination and the flag thresholds -> core/segment/confidence_model.json
    python benchmarks/bench_confidence.py select
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
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "runs" / "confidence"

from core.evaluation.metrics import dice  # noqa: E402
from core.evaluation.runner import manifest_images  # noqa: E402
from core.models.loading import load_model  # noqa: E402
from core.review.quality_flags import assess  # noqa: E402
from core.segment.confidence import (  # noqa: E402
    MODEL_FILE, VARIANT_INSETS, ConfidenceModel, measure, measure_variants, probability_margin, transform)
from core.segment.predictor import Predictor  # noqa: E402
from core.io.manifest import read_manifest  # noqa: E402

# (name, data folder, splits, role). "fit" sets may be used to fit; "report" sets never are. clinic-sample
# val is not fitted on: it is part of the reported clinic-sample (all 50).
SETS = (
    ("cxr-lungs val", "cxr-lungs", ("val",), "fit"),
    ("peds-lungs val", "peds-lungs", ("val",), "fit"),
    ("clinic-sample all 50", "clinic-sample", ("train", "val"), "report"),
    ("shenzhen val", "shenzhen", ("val",), "report"),
    ("peds-lungs test", "peds-lungs", ("test",), "report"),
    # the clinic's loop: the same images under the model shenzhen's own fine-tune made (its reader's rule learnt);
    # collected with --model <that model's folder> (bench_clinic_finetune.py --shenzhen-train 50 makes one)
    ("shenzhen val fine-tuned", "shenzhen", ("val",), "finetuned"),
)
LOW_DICE = 0.90
MAX_FLAGGED_SHARE_VAL = 0.15  # the low-confidence cut flags at most this share of the val masks

# The terms of the fitted model (prefixes: core.segment.confidence.transform), chosen on the val sets alone
# by ``select``: the mean of the 5-fold CV Spearman on both val sets pooled and of the two cross-set fits
# (fit on cxr-lungs val -> rank peds-lungs val, and back), which rewards terms that carry over to another
# source (2026-12-05, 145 val images, 8 of them Dice < 0.90):
#   terms                              CV     cxr->peds  peds->cxr   criterion
#   uncertain + soft Dice (until now)  0.689  0.72       0.37        0.594
#   uncertain                          0.689  0.72       0.38        0.596
#   decoder IoU prediction             0.547  0.65       0.22        0.470
#   uncertain + IoU prediction         0.689  0.72       0.38        0.595  (IoU gets weight 0)
#   uncertain + box inset bottom-right 0.699  0.71       0.51        0.641  <- chosen (1 decoder run)
#   uncertain + all four box variants  0.693  0.70       0.53        0.640  (4 decoder runs)
#   uncertain + bottom-right + shape   0.676  0.71       0.47        0.618  (shape is used by the flags)
#   mean probability inside the mask   0.699  0.73       0.37        0.600
#   uncertain + bottom-right + mean in 0.696  0.71       0.46        0.623
TERMS = (
    "log_uncertain_fraction",
    "log1m_agree_inset_bottom_right",
)
FIT_VARIANTS: tuple[str, ...] = ("inset_bottom_right",)
RIDGE = 1.0
CANDIDATES = {
    "uncertain + soft Dice": ("log_uncertain_fraction", "log1m_soft_dice"),
    "uncertain": ("log_uncertain_fraction",),
    "decoder IoU prediction": ("log1m_iou_prediction",),
    "uncertain + IoU prediction": ("log_uncertain_fraction", "log1m_iou_prediction"),
    "uncertain + inset bottom-right": TERMS,
    "uncertain + all box variants": ("log_uncertain_fraction",) + tuple(f"log1m_agree_{v}" for v in VARIANT_INSETS),
    "uncertain + bottom-right + shape": TERMS + ("log1m_side_ratio", "lower_border_roughness", "log1m_solidity"),
    "mean probability inside": ("log1m_mean_inside",),
    "uncertain + mean inside": ("log_uncertain_fraction", "log1m_mean_inside"),
    "uncertain + bottom-right + mean inside": TERMS + ("log1m_mean_inside",),
}


def _cache_path(name: str) -> Path:
    return CACHE / (name.replace(" ", "_") + ".json")


def collect(names: list[str], model_name: str, variants: tuple[str, ...], limit: int | None,
            fresh: bool = False, redo_without_maps: bool = False) -> None:
    loaded = load_model(model_name)
    predictor = Predictor(loaded)
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, folder, splits, _role in SETS:
        if name not in names:
            continue
        samples = [s for s in read_manifest(DATA / folder / "manifest.csv").samples if s.split in splits][:limit]
        problems: list[str] = []
        rows, done_seconds = _resumable_rows(name, loaded.info.label, variants, fresh)
        maps = CACHE / "maps" / name.replace(" ", "_")
        if redo_without_maps:  # rows collected before the maps were kept: run them again
            rows = [row for row in rows if (maps / f"{row['id']}.npz").is_file()]
        done = {row["id"] for row in rows}
        started = time.perf_counter() - done_seconds
        maps.mkdir(parents=True, exist_ok=True)
        for item in manifest_images([s for s in samples if s.id not in done], problems):
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
            # the maps behind the features, so that a new feature can be measured without the encoder
            np.savez_compressed(maps / f"{item.id}.npz", low=low.astype(np.float16), mask=result.mask > 0,
                                truth=item.truth)
            rows.append({"id": item.id, "dice": dice(result.mask, item.truth), "mask_seconds": mask_seconds,
                         "confidence_seconds": extra, "base_feature_seconds": base, "variant_seconds": variant_seconds,
                         "features": features})
            print(f"{name}: {len(rows)}/{len(samples)} dice {rows[-1]['dice']:.3f} "
                  f"(+{extra * 1000:.0f} ms of {mask_seconds * 1000:.0f})", flush=True)
            if len(rows) % 10 == 0 or len(rows) == len(samples):  # partial results survive an interrupted run
                _cache_path(name).write_text(json.dumps({
                    "set": name, "model": loaded.info.label, "model_path": loaded.info.path,
                    "variants": list(variants), "rows": rows,
                    "problems": problems, "complete": len(rows) + len(problems) >= len(samples),
                    "seconds": time.perf_counter() - started}, indent=1))


def _resumable_rows(name: str, model: str, variants: tuple[str, ...], fresh: bool) -> tuple[list[dict], float]:
    """Rows already collected for this set with the same mask model and variants (an interrupted run goes on)."""
    path = _cache_path(name)
    if fresh or not path.is_file():
        return [], 0.0
    data = json.loads(path.read_text())
    if data.get("model") != model or tuple(data.get("variants", ())) != tuple(variants):
        return [], 0.0
    return data["rows"], float(data.get("seconds", 0.0))


def _load(name: str) -> dict:
    path = _cache_path(name)
    if not path.is_file():
        raise SystemExit(f"error: {path}: no features for '{name}' (run: bench_confidence.py collect first)")
    data = json.loads(path.read_text())
    maps = CACHE / "maps" / name.replace(" ", "_")
    for row in data["rows"]:  # probability-map features added after a row was collected, from its kept map
        if "mean_inside" not in row["features"] and (maps / f"{row['id']}.npz").is_file():
            low = np.load(maps / f"{row['id']}.npz")["low"].astype(np.float32)
            row["features"]["mean_inside"] = probability_margin(low)["mean_inside"]
    return data


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


def fit_terms(rows: list[dict], terms: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge regression of log(1 - Dice) on standardised terms, every weight >= 0.

    Each term grows with the expected error (its sign is known before fitting); the constraint keeps two
    correlated terms from taking opposite weights that fit 145 images and nothing else.
    """
    from scipy.optimize import nnls

    x = np.array([[transform(row["features"], t) for t in terms] for row in rows])
    y = np.array([math.log(max(1e-3, 1.0 - row["dice"])) for row in rows])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = (x - mean) / scale
    a = np.vstack([z, math.sqrt(RIDGE) * np.eye(len(terms))])
    weights, _ = nnls(a, np.concatenate([y - y.mean(), np.zeros(len(terms))]))
    return mean, scale, weights, float(y.mean())


def predict_terms(fitted, rows: list[dict], terms: tuple[str, ...]) -> np.ndarray:
    mean, scale, weights, bias = fitted
    x = np.array([[transform(row["features"], t) for t in terms] for row in rows])
    return ((x - mean) / scale) @ weights + bias


def select(names: list[str]) -> list[dict]:
    """The candidate term sets scored on the val sets alone (see TERMS for the criterion)."""
    by_set = [_load(name)["rows"] for name in names]
    rows = [row for part in by_set for row in part]
    dices = np.array([row["dice"] for row in rows])
    table = []
    for label, terms in CANDIDATES.items():
        folds = []
        for seed in range(5):  # 5-fold CV, five shuffles
            order = np.random.default_rng(seed).permutation(len(rows))
            predicted = np.zeros(len(rows))
            for fold in range(5):
                test = order[fold::5]
                train = np.setdiff1d(order, test)
                fitted = fit_terms([rows[i] for i in train], terms)
                predicted[test] = predict_terms(fitted, [rows[i] for i in test], terms)
            folds.append(spearman(-predicted, dices))
        cross = [spearman(-predict_terms(fit_terms(a, terms), b, terms), [r["dice"] for r in b])
                 for a, b in ((by_set[0], by_set[1]), (by_set[1], by_set[0]))]
        scores = [float(np.mean(folds))] + cross
        table.append({"terms": label, "cv": scores[0], "cross": cross, "criterion": float(np.mean(scores))})
        print(f"{label:<34} CV {scores[0]:.3f}  {names[0]}->{names[1]} {cross[0]:.2f}  back {cross[1]:.2f}  "
              f"criterion {np.mean(scores):.3f}")
    return table


def fit(names: list[str]) -> dict:
    rows = [row for name in names for row in _load(name)["rows"]]
    usual = float(np.median([row["features"]["lung_fraction"] for row in rows]))
    terms = TERMS
    mean, scale, weights, bias = fit_terms(rows, terms)
    y = np.array([math.log(max(1e-3, 1.0 - row["dice"])) for row in rows])
    residual = y - predict_terms((mean, scale, weights, bias), rows, terms)
    residual_scale = float(residual.std() * math.sqrt(3) / math.pi)  # logistic scale with that spread
    model = {
        "about": "Confidence of an automatic lung mask: linear model of log(1 - Dice) on the terms below "
                 "(core/segment/confidence.py), fitted by benchmarks/bench_confidence.py fit on val splits only.",
        "terms": list(terms), "mean": mean.tolist(), "scale": scale.tolist(), "weights": weights.tolist(),
        "bias": bias, "residual_scale": residual_scale, "dice_threshold": LOW_DICE,
        "variants": list(FIT_VARIANTS), "fitted_on": names, "images": len(rows),
        "flags": {}, "model": _load(names[0])["model"],
    }
    model["flags"] = choose_flag_thresholds(rows, ConfidenceModel.from_dict(model), usual)
    return model


def choose_flag_thresholds(rows: list[dict], model: ConfidenceModel, usual_fraction: float) -> dict:
    """Shape flags at anatomical limits (rare on val); the confidence cut that, with them, catches the most
    val masks with Dice < 0.90 while flagging at most MAX_FLAGGED_SHARE_VAL of all val masks."""
    fractions = np.array([r["features"]["lung_fraction"] for r in rows])
    rough = np.array([r["features"]["lower_border_roughness"] for r in rows])
    flags = {
        "one_lung_side_ratio": 0.25,  # one half of the image holds under a quarter of the other's lung
        "small_lung_fraction": round(float(min(0.5 * usual_fraction, np.percentile(fractions, 2))), 4),
        "usual_lung_fraction": round(usual_fraction, 4),
        # a border that visibly jumps (1.5 px of 256 on average); val masks stay far below (97th pct ~0.35)
        "ragged_lower_border": round(float(max(np.percentile(rough, 97), 1.5)), 3),
    }
    dices = np.array([r["dice"] for r in rows])
    scores = [model.score(r["features"]) for r in rows]
    best = None
    for cut in np.linspace(0.05, 0.99, 95):
        trial = dict(flags, low_confidence=float(cut))
        flagged = np.array([bool(assess(score, r["features"], trial).flags) for score, r in zip(scores, rows)])
        share = flagged.mean()
        caught = flagged[dices < LOW_DICE].mean() if (dices < LOW_DICE).any() else 1.0
        better = best is None or caught > best[1] or (caught == best[1] and share < best[2])
        if share <= MAX_FLAGGED_SHARE_VAL and better:
            best = (float(cut), float(caught), float(share))
    flags["low_confidence"] = round(best[0] if best else 0.5, 3)
    if best:
        print(f"low-confidence cut {best[0]:.2f}: on the val masks {best[2] * 100:.0f} % flagged, "
              f"{best[1] * 100:.0f} % of those with Dice < {LOW_DICE} caught")
    return flags


def report(names: list[str], json_out: Path | None, plot: Path | None, after_finetune: list[str] = ()) -> dict:
    from core.segment.confidence import load_confidence_model

    model = load_confidence_model(MODEL_FILE)
    table = []
    points = []
    shares = []
    for name in names:
        if not _cache_path(name).is_file():
            print(f"{name}: no features collected yet; left out")
            continue
        row, point, share = _set_row(name, model)
        table.append(row)
        points.append(point)
        shares.append(share)
    if len(points) > 1:  # the external sets together (rank correlation over the pooled masks)
        pooled = [np.concatenate([p[i] for p in points]) for i in (1, 2, 3)]
        ious = [r["features"]["iou_prediction"] for name in names for r in _load(name)["rows"]]
        table.append(_row("all three pooled", len(pooled[0]), all(r["complete"] for r in table), *pooled, ious,
                          np.concatenate(shares), {}))
    for name in after_finetune:  # another mask model: its own rows and panel, not pooled with the default's
        if _cache_path(name).is_file():
            rows, point = _finetuned_rows(name, model)
            table += rows
            points.append(point)
    print(f"confidence model fitted on: {', '.join(model.fitted_on)}; mask model: {_load(names[0])['model']}; "
          f"terms: {', '.join(model.terms)}; variants: {', '.join(model.variants) or 'none'}")
    print(f"{'set':<44}{'n':>5}{'med Dice':>9}{'rho conf':>9}{'rho IoU':>8}{'Dice<.90':>9}{'flagged':>9}"
          f"{'% flagged':>10}{'best@20%':>9}{'+time':>7}")
    for row in table:
        caught = f"{row['low_dice_flagged']}/{row['low_dice_masks']}"
        best = "-" if row["best_catch_at_20pct"] is None else f"{row['best_catch_at_20pct'] * 100:.0f}%"
        print(f"{row['set'] + ('' if row['complete'] else ' (part)'):<44}{row['images']:>5}{row['median_dice']:>9.3f}"
              f"{row['spearman_confidence_dice']:>9.2f}{row['spearman_iou_prediction_dice']:>8.2f}"
              f"{row['low_dice_masks']:>9}{caught:>9}{row['flagged_share'] * 100:>9.1f}%{best:>9}"
              f"{row['median_extra_share'] * 100:>6.1f}%")
    print("best@20%: the most masks with Dice < 0.90 that any flag could catch while flagging at most 20 % of all")
    out = {"model": _load(names[0])["model"], "fitted_on": list(model.fitted_on), "low_dice": LOW_DICE, "sets": table}
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(out, indent=2))
    if plot:
        _scatter(points, plot)
        _examples(names, model, plot.with_name(plot.stem + "_lowest.png"))
    return out


def _finetuned_rows(name: str, model: ConfidenceModel) -> tuple[list[dict], tuple]:
    """A fine-tuned model's masks under the shared calibration, and under its own calibration.

    The product calibrates on the run's held-out images (``confidence_calibration`` in the card); the
    benchmark may not report on the images a calibration saw, so it cross-fits the same function: each
    half of the set (alternate images) is scored with the shift measured on the other half.
    """
    from core.segment.confidence_calibration import calibration

    data = _load(name)
    rows = data["rows"]
    shared = _set_row(name, model)[0]
    shared.update(set=f"{name}, shared calibration", mask_model=data["model"])
    halves = (rows[0::2], rows[1::2])
    shifts = []
    for index, half in enumerate(halves):
        other = [{"dice": r["dice"], "confidence_features": r["features"]} for r in halves[1 - index]]
        shifts.append((calibration(other, model) or {}).get("bias_shift", 0.0))
    models = [model.shifted(shifts[0])] * len(halves[0]) + [model.shifted(shifts[1])] * len(halves[1])
    own, point, _ = _set_row(name, model, halves[0] + halves[1], models)
    own.update(set=f"{name}, own calibration", mask_model=data["model"],
               calibration="cross-fitted: each half scored with the shift measured on the other half",
               bias_shifts=[round(v, 3) for v in shifts])
    card_dir = Path(data.get("model_path", ""))
    if (card_dir / "model.json").is_file():
        from core.models.card import read_model_card

        own["card_calibration"] = read_model_card(card_dir).confidence_calibration
    return [shared, own], (f"{name}, own calibration\n", *point[1:])


def _set_row(name: str, model: ConfidenceModel, rows: list[dict] | None = None,
             models: list[ConfidenceModel] | None = None) -> tuple[dict, tuple, np.ndarray]:
    """One set's table row, its (name, Dice, confidence, flagged) points and the confidence's time share.

    ``models``: one confidence model per row (a calibration cross-fitted over the set), else ``model`` for all.
    """
    data = _load(name)
    rows = data["rows"] if rows is None else rows
    models = models or [model] * len(rows)
    dices = np.array([r["dice"] for r in rows])
    quality = [assess(m.score(r["features"]), r["features"], m.flags) for m, r in zip(models, rows)]
    conf = np.array([q.confidence for q in quality])
    flagged = np.array([bool(q.flags) for q in quality])
    extra = np.array([_extra_seconds(r, model.variants) for r in rows])
    mask_s = np.array([r["mask_seconds"] for r in rows])
    by_flag: dict[str, int] = {}
    for q in quality:
        for flag in q.flags:
            by_flag[flag.code] = by_flag.get(flag.code, 0) + 1
    row = _row(name, len(rows), bool(data.get("complete", True)), dices, conf, flagged,
               [r["features"]["iou_prediction"] for r in rows], extra / mask_s, by_flag)
    row.update(median_extra_ms=float(np.median(extra) * 1000), median_mask_ms=float(np.median(mask_s) * 1000))
    return row, (name, dices, conf, flagged), extra / mask_s


def _row(name, n, complete, dices, conf, flagged, ious, extra_share, by_flag) -> dict:
    low = dices < LOW_DICE
    return {
        "set": name, "images": int(n), "complete": bool(complete), "median_dice": float(np.median(dices)),
        "spearman_confidence_dice": spearman(conf, dices), "spearman_iou_prediction_dice": spearman(ious, dices),
        "low_dice_masks": int(low.sum()), "low_dice_flagged": int((flagged & low).sum()),
        "low_dice_flagged_share": float(flagged[low].mean()) if low.any() else None,
        "best_catch_at_20pct": min(1.0, 0.2 * n / low.sum()) if low.any() else None,
        "flagged_share": float(flagged.mean()), "flags": by_flag,
        "median_extra_share": float(np.median(extra_share)),
    }


def _extra_seconds(row: dict, variants) -> float:
    """Time the confidence adds to this mask with the fitted model's variants (all that the product runs)."""
    if "variant_seconds" not in row:
        return row["confidence_seconds"]
    return row["base_feature_seconds"] + sum(row["variant_seconds"][v] for v in variants)


def _examples(names: list[str], model: ConfidenceModel, path: Path, per_set: int = 3) -> None:
    """The lowest-Dice masks of each set with their confidence: reader's outline green, model's red."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picked = []
    for name in names:
        folder = next(s[1] for s in SETS if s[0] == name)
        samples = {s.id: s for s in read_manifest(DATA / folder / "manifest.csv").samples}
        maps = CACHE / "maps" / name.replace(" ", "_")
        rows = sorted((r for r in _load(name)["rows"] if (maps / f"{r['id']}.npz").is_file()), key=lambda r: r["dice"])
        picked += [(name, row, samples[row["id"]], maps / f"{row['id']}.npz") for row in rows[:per_set]]
    if not picked:
        return
    fig, axes = plt.subplots(len(names), per_set, figsize=(2.8 * per_set, 3.0 * len(names)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    slots = {name: iter(axes[i]) for i, name in enumerate(names)}
    for name, row, sample, npz in picked:
        ax = next(slots[name])
        arrays = np.load(npz)
        gray = cv2.imdecode(np.fromfile(sample.image, np.uint8), cv2.IMREAD_GRAYSCALE)
        ax.imshow(gray, cmap="gray")
        ax.contour(arrays["truth"] == 255, levels=[0.5], colors="lime", linewidths=0.8)
        ax.contour(arrays["mask"], levels=[0.5], colors="red", linewidths=0.8)
        quality = assess(model.score(row["features"]), row["features"], model.flags)
        ax.set_title(f"{name}\nDice {row['dice']:.3f}, conf {quality.confidence:.2f}"
                     f"{' (flagged)' if quality.flags else ''}", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)


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
    c.add_argument("--fresh", action="store_true", help="start the sets again (default: go on where a run stopped)")
    c.add_argument("--redo-without-maps", action="store_true", help="run again the images whose maps were not kept")
    sub.add_parser("select", help="score the candidate term sets on the val sets (how TERMS was chosen)")
    f = sub.add_parser("fit")
    f.add_argument("--out", type=Path, default=MODEL_FILE)
    r = sub.add_parser("report")
    r.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "confidence.json")
    r.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "results" / "plots" / "confidence_vs_dice.png")
    args = parser.parse_args(argv)
    fit_sets = [s[0] for s in SETS if s[3] == "fit"]
    report_sets = [s[0] for s in SETS if s[3] == "report"]
    finetuned_sets = [s[0] for s in SETS if s[3] == "finetuned"]
    if args.command == "collect":
        names = {"fit": fit_sets, "report": report_sets}.get(args.sets) or args.sets.split(",")
        variants = tuple(VARIANT_INSETS) if args.variants == "all" else tuple(v for v in args.variants.split(",") if v)
        collect(names, args.model, variants, args.limit, args.fresh, args.redo_without_maps)
    elif args.command == "select":
        select(fit_sets)
    elif args.command == "fit":
        model = fit(fit_sets)
        args.out.write_text(json.dumps(model, indent=1) + "\n")
        print(json.dumps({k: model[k] for k in ("terms", "weights", "bias", "residual_scale", "flags")}, indent=1))
    else:
        report(report_sets, args.json_out, args.plot, finetuned_sets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
