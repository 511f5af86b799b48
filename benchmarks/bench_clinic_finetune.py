"""The clinic fine-tune as an annotator runs it, measured: wall clock, peak RSS, Dice before/after.

Runs ``/usr/bin/time -v python -m core.cli train --data <clinic manifest> --out <run> --from default
--time-budget <s>`` (issue 9's done-when), then reads what the run wrote (``comparison.json``, the
new ``model.json``) and prints one table row per budget; JSON goes to ``--json-out``.

    python benchmarks/bench_clinic_finetune.py [--budget 900] [--budget 300] [--threads N] [--profile tail]
        [--data ../shared/data/clinic-sample/manifest.csv | --shenzhen-train 50] [--from default]
        [--json-out benchmarks/results/clinic_finetune.json]
    python benchmarks/bench_clinic_finetune.py --reuse RUN_DIR --time-log LOG   # a run made by hand

Data: clinic-sample (another hospital; train 35 = training 30 + epoch selection 5, val 15 = the
held-out comparison), or ``--shenzhen-train N``: a manifest of the first N shenzhen ``train`` images
plus the whole ``val`` split (another convention: aerated lung only). Model: the bundled INT8 default
continued (``--profile``: tail by default, or decoder). Prompt: automatic (whole-image box). Dice at
full image resolution, as the viewer shows masks. Wall clock is measured here, not asserted by a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "clinic-sample" / "manifest.csv"


def time_v(command: list[str], env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """Run under GNU time -v; returns the process and {wall_s, peak_rss_gib}."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *command], cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    peak = int(found.group(1)) / (1 << 20) if found else float("nan")
    return result, {"wall_s": round(wall, 1), "peak_rss_gib": round(peak, 3)}


def shenzhen_manifest(train_images: int, folder: Path) -> Path:
    """The first ``train_images`` shenzhen train rows and every val row, as a clinic would hold them."""
    import csv

    source = ROOT.parent / "shared" / "data" / "shenzhen" / "manifest.csv"
    with source.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [r for r in rows if r["split"] == "train"][:train_images]
    val = [r for r in rows if r["split"] == "val"]
    path = folder / f"shenzhen-{train_images}-train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "image", "mask", "split"])
        for row in train + val:
            writer.writerow([row["id"], source.parent / row["image"], source.parent / row["mask"], row["split"]])
    return path


def run_budget(data: Path, budget: float, threads: int | None, work: Path, profile: str, parent: str) -> dict:
    out = work / f"run-{int(budget)}"
    env = dict(os.environ, ADAQAT_HOME=str(work / "home"))  # never the user's models
    command = [sys.executable, "-m", "core.cli", "train", "--data", str(data), "--out", str(out),
               "--from", parent, "--time-budget", str(budget), "--profile", profile]
    if threads:
        command += ["--threads", str(threads)]
    result, measured = time_v(command, env)
    if result.returncode != 0:
        raise SystemExit(f"run with budget {budget} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return run_row(out, budget, measured, result.stderr, " ".join(["/usr/bin/time -v adaqat", *command[3:]]))


def reused_row(out: Path, time_log: Path) -> dict:
    """The row of a run made by hand under ``/usr/bin/time -v`` (its stderr in ``time_log``)."""
    log = time_log.read_text(encoding="utf-8", errors="replace")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", log)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    command = re.search(r'Command being timed: "(.*)"', log)
    wall_s = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))) if wall else float("nan")
    measured = {"wall_s": round(wall_s, 1), "peak_rss_gib": round(int(rss.group(1)) / (1 << 20), 3) if rss else float("nan")}
    budget = json.loads((out / "model-int8" / "model.json").read_text())["training"]["plan"]["budget_s"]
    row = run_row(out, budget, measured, log, command.group(1) if command else "")
    said = re.search(r"continuing from .*, (\w+) profile", log)  # runs before model.json named the tail profile
    if said:
        row["profile"] = said.group(1)
    return row


def run_row(out: Path, budget: float, measured: dict, stderr: str, command: str) -> dict:
    comparison = json.loads((out / "comparison.json").read_text())
    card = json.loads((out / "model-int8" / "model.json").read_text())
    training = card["training"]
    stage1, qat = card["stage1"], card["qat"]
    train_seconds = stage1["seconds"] + qat["seconds"]
    views = training["train_views"]
    steps_images = views * (stage1["epochs_run"] + qat["epochs_run"])
    old, new = comparison["active_model"]["dice_mean"], comparison["new_model"]["dice_mean"]
    return {
        "data": (comparison.get("about") or {}).get("data", ""),
        "profile": training.get("profile", "decoder"),
        "parent": f"{card['parent']['name']} {card['parent']['version']}",
        "budget_s": budget,
        **measured,
        "within_15pct": abs(measured["wall_s"] - budget) <= 0.15 * budget,
        "train_images": training["train_images"],
        "selection_images": training["selection_images"],
        "heldout_images": comparison["images"],
        "views_per_image": training["plan"]["views"],
        "stage1_epochs": stage1["epochs_run"],
        "stage2_epochs": qat["epochs_run"],
        "training_s": round(train_seconds, 1),
        "train_images_per_s": round(steps_images / max(train_seconds, 1e-6), 2),
        "dice_active": round(old, 4),
        "dice_new": round(new, 4),
        "dice_gain_per_training_min": round((new - old) / max(train_seconds / 60, 1e-6), 5),
        "wilcoxon_p": comparison["wilcoxon_p"],
        "better": comparison["better"],
        "images_better": comparison.get("better_images"),
        "images_worse": len(comparison.get("worse_images") or []),
        "worse_images": comparison.get("worse_images"),
        "phases_planned_s": training["plan"]["phases_s"],
        "replanned": training.get("replanned"),
        "stage1_selection_dice_before": stage1["val_dice_before"],
        "stage1_best_epoch": stage1["best_epoch"],
        "stage2_selection_dice_before": qat["val_dice_fake_quant_before"],
        "stage2_best_epoch": qat["best_epoch"],
        "stage1_history": stage1["history"],
        "stage2_history": qat["history"],
        "log_tail": [line for line in stderr.replace("\r", "\n").splitlines() if not line.startswith("[stage")][-40:],
        "command": command,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget", type=float, action="append", help="seconds (repeatable; default 900)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", default="tail", choices=("tail", "decoder"))
    parser.add_argument("--from", dest="parent", default="default", help="the model continued (default: the bundled one)")
    parser.add_argument("--shenzhen-train", type=int, default=None, metavar="N",
                        help="train on the first N shenzhen train images, compare on shenzhen val (170)")
    parser.add_argument("--reuse", type=Path, default=None, help="a finished run folder (with --time-log)")
    parser.add_argument("--time-log", type=Path, default=None, help="that run's stderr, with /usr/bin/time -v's report")
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "clinic_finetune.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="adaqat-clinic-bench-") as work:
        data = shenzhen_manifest(args.shenzhen_train, Path(work)) if args.shenzhen_train else args.data
        if not data.is_file():
            raise SystemExit(f"{data}: clinic manifest not found (pass --data)")
        budgets = [] if args.reuse else (args.budget or [900.0])
        if args.reuse:
            rows.append(reused_row(args.reuse, args.time_log))
        for budget in budgets:
            rows.append(run_budget(data, budget, args.threads, Path(work), args.profile, args.parent))
        for row in rows:
            print(f"budget {row['budget_s']:.0f} s: wall {row['wall_s']:.0f} s, peak RSS {row['peak_rss_gib']:.2f} GiB, "
                  f"Dice {row['dice_active']:.4f} -> {row['dice_new']:.4f} (p={row['wilcoxon_p']:.3g})", flush=True)
    header = ("data", "profile", "budget s", "wall s", "peak GiB", "views", "ep1", "ep2", "held-out", "Dice active",
              "Dice new", "better/worse images", "p", "better")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join(str(v) for v in (r["data"], r["profile"], r["budget_s"], r["wall_s"], r["peak_rss_gib"],
                                          r["views_per_image"], r["stage1_epochs"], r["stage2_epochs"],
                                          r["heldout_images"], r["dice_active"], r["dice_new"],
                                          f"{r['images_better']}/{r['images_worse']}", f"{r['wilcoxon_p']:.3g}",
                                          r["better"])))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    args.json_out.write_text(json.dumps({"machine": machine, "model": args.parent,
                                         "prompt": "auto", "rows": rows}, indent=2))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
