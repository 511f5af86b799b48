"""The clinic fine-tune as an annotator runs it, measured: wall clock, peak RSS, Dice before/after.

Runs ``/usr/bin/time -v python -m core.cli train --data <clinic manifest> --out <run> --from default
--time-budget <s>`` (issue 9's done-when), then reads what the run wrote (``comparison.json``, the
new ``model.json``) and prints one table row per budget; JSON goes to ``--json-out``.

    python benchmarks/bench_clinic_finetune.py [--budget 900] [--budget 300] [--threads N]
        [--data ../shared/data/clinic-sample/manifest.csv] [--json-out benchmarks/results/clinic_finetune.json]

Data: clinic-sample (another hospital; train 35 = training 30 + epoch selection 5, val 15 = the
held-out comparison). Model: the bundled INT8 default continued with the decoder profile. Prompt:
automatic (whole-image box). Dice at full image resolution, as the viewer shows masks.
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


def run_budget(data: Path, budget: float, threads: int | None, work: Path) -> dict:
    out = work / f"run-{int(budget)}"
    env = dict(os.environ, ADAQAT_HOME=str(work / "home"))  # never the user's models
    command = [sys.executable, "-m", "core.cli", "train", "--data", str(data), "--out", str(out),
               "--from", "default", "--time-budget", str(budget)]
    if threads:
        command += ["--threads", str(threads)]
    result, measured = time_v(command, env)
    if result.returncode != 0:
        raise SystemExit(f"run with budget {budget} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    comparison = json.loads((out / "comparison.json").read_text())
    card = json.loads((out / "model-int8" / "model.json").read_text())
    training = card["training"]
    stage1, qat = card["stage1"], card["qat"]
    train_seconds = stage1["seconds"] + qat["seconds"]
    views = training["train_views"]
    steps_images = views * (stage1["epochs_run"] + qat["epochs_run"])
    old, new = comparison["active_model"]["dice_mean"], comparison["new_model"]["dice_mean"]
    return {
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
        "phases_planned_s": training["plan"]["phases_s"],
        "replanned": training.get("replanned"),
        "stage1_selection_dice_before": stage1["val_dice_before"],
        "stage1_best_epoch": stage1["best_epoch"],
        "stage2_selection_dice_before": qat["val_dice_fake_quant_before"],
        "stage2_best_epoch": qat["best_epoch"],
        "stage1_history": stage1["history"],
        "stage2_history": qat["history"],
        "log_tail": [line for line in result.stderr.splitlines() if not line.startswith("[stage")][-40:],
        "command": " ".join(["/usr/bin/time -v adaqat", *command[3:]]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget", type=float, action="append", help="seconds (repeatable; default 900)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "clinic_finetune.json")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data}: clinic-sample manifest not found (pass --data)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="adaqat-clinic-bench-") as work:
        for budget in args.budget or [900.0]:
            rows.append(run_budget(args.data, budget, args.threads, Path(work)))
            row = rows[-1]
            print(f"budget {row['budget_s']:.0f} s: wall {row['wall_s']:.0f} s, peak RSS {row['peak_rss_gib']:.2f} GiB, "
                  f"Dice {row['dice_active']:.4f} -> {row['dice_new']:.4f} (p={row['wilcoxon_p']:.3g})", flush=True)
    header = ("budget s", "wall s", "peak GiB", "views", "ep1", "ep2", "img/s", "Dice active", "Dice new", "p", "better")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join(str(v) for v in (r["budget_s"], r["wall_s"], r["peak_rss_gib"], r["views_per_image"],
                                          r["stage1_epochs"], r["stage2_epochs"], r["train_images_per_s"],
                                          r["dice_active"], r["dice_new"], f"{r['wilcoxon_p']:.3g}", r["better"])))
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    args.json_out.write_text(json.dumps({"machine": machine, "data": str(args.data), "model": "default (bundled INT8)",
                                         "prompt": "auto", "rows": rows}, indent=2))
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
