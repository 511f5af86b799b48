"""Regenerate the report block of BENCHMARKS.md (issue 14) from stored results JSON.

    python benchmarks/make_report.py            # render tables + PNG plots from benchmarks/results/*.json

Reads benchmarks/results/{accuracy,int8_kernels,clinic_finetune}.json, the issue-14 results when present
({stage1_issue14,gpu_speed,cpu_latency_vs_size,cpu_train_vs_images}.json) and the shipped model's
model.json, writes benchmarks/results/report.json and benchmarks/results/plots/*.png, and replaces only
the text between the report markers in BENCHMARKS.md (the file is re-read right before writing, so other
sections edited meanwhile are kept). Nothing is measured: every number comes from a stored result that
names its data, model, prompt, machine and command.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def fmt(value, spec: str = ".4f") -> str:
    if value is None:
        return "–"
    return format(value, spec)


S1_MACHINE = "H200 train (4 runs sharing it), dev-VM CPU score"
S1_COMMAND_256 = "bash tools/device_gpu_speed_stage1.sh b; bash tools/device_gpu_speed_stage1.sh score   # 256-px per-image test Dice"


def _summary_of(values: list[float]) -> dict:
    from core.evaluation.summary import summarize

    return summarize(values).as_dict()


def _evaluate_command(e: dict, model: str, compare: str | None) -> str:
    data = "../shared/data/cxr-lungs/manifest.csv" if e["split"] == "test" else "../shared/data/clinic-sample/manifest.csv"
    extra = f" --compare {compare}" if compare else ""
    return f"adaqat evaluate --model {model}{extra} --data {data} --split {e['split']} --prompt {e['prompt']} --json"


def run_of(model: str) -> str:
    """'policy-lora_r8 2026-12-03+51c81d9d' (the card's name and version, as evaluate prints it) -> 'lora_r8'."""
    return model.split()[0].removeprefix("policy-")


def stage1_rows(spec: dict, s1: dict | None) -> list[dict]:
    """Rows of one issue-14 run: 256-px test (auto, box) from per-image Dice, then full-resolution rows."""
    if s1 is None or spec["run"] not in s1.get("runs", {}):
        return [{"row": spec["row"], "status": "not run"}]
    run = s1["runs"][spec["run"]]
    base = {"row": spec["row"], "trainable": run["trainable"], "reduction": run["reduction_vs_full"],
            "file_bytes": run["file_bytes"], "machine": S1_MACHINE}
    rows = []
    for prompt in ("auto", "box"):
        values = s1["test256"].get(spec["run"], {}).get(prompt)
        if values:
            summary = _summary_of(values)
            rows.append({**base, "data": f"cxr-lungs test ({len(values)})", "prompt": prompt, "resolution": "256 px",
                         "dice": summary["mean"], "dice_std": summary["std"], "dice_ci": [summary["ci95_low"], summary["ci95_high"]],
                         "command": S1_COMMAND_256})
    for e in s1.get("full_resolution", []):
        paths = [f"runs/i14/{run_of(m['model'])}/model-fp32" for m in e["models"]]
        for m in e["models"]:
            if run_of(m["model"]) != spec["run"]:
                continue
            sm = m["summary"]
            n = sm["dice"]["n"]
            data = f"cxr-lungs test ({n})" if e["split"] == "test" else f"clinic-sample val ({n}, external)"
            if any(r["data"] == data and r["prompt"] == e["prompt"] and r["resolution"] == "full" for r in rows):
                continue
            rows.append({**base, "data": data, "prompt": e["prompt"], "resolution": "full", "dice": sm["dice"]["mean"],
                         "dice_std": sm["dice"]["std"], "dice_ci": [sm["dice"]["ci95_low"], sm["dice"]["ci95_high"]],
                         "iou": sm["iou"]["mean"], "hd95_median": sm["hd95"]["median"], "nsd": sm["nsd"]["mean"],
                         "command": _evaluate_command(e, paths[0], paths[1] if len(paths) > 1 else None),
                         "machine": "dev VM, 2-core Xeon (CPU, FP32 torch)"})
    order = {"256 px": 0, "full": 1}
    rows.sort(key=lambda r: (order[r["resolution"]], "clinic" in r["data"], r["prompt"]))
    return rows


def stage1_tests(s1: dict | None) -> list[dict]:
    """Paired Wilcoxon tests of issue 14: AdaLoRA vs LoRA (r 12, r 8), full vs AdaLoRA; 256 px and full resolution."""
    if s1 is None:
        return [{"what": "AdaLoRA vs fixed-rank LoRA, paired Wilcoxon", "status": "not run"}]

    from core.evaluation.stats import paired_wilcoxon

    tests = []
    t256 = s1["test256"]
    for a, b, what in (("everywhere", "lora", "AdaLoRA (everywhere) vs fixed-rank LoRA r 12, same trainable parameters"),
                       ("everywhere", "lora_r8", "AdaLoRA (everywhere) vs fixed-rank LoRA r 8, same final rank budget"),
                       ("full", "everywhere", "full fine-tuning vs AdaLoRA (everywhere)")):
        for prompt in ("auto", "box"):
            if a in t256 and b in t256:
                w = paired_wilcoxon(t256[a][prompt], t256[b][prompt])
                tests.append({"what": what, "data": f"cxr-lungs test ({w.n}), 256 px", "prompt": prompt,
                              "mean_difference": w.mean_difference, "p": w.p_value})
    for e in s1.get("full_resolution", []):
        c = e.get("comparison")
        if not c:
            continue
        label = {"full": "full fine-tuning", "everywhere": "AdaLoRA (everywhere)", "lora": "fixed-rank LoRA r 12",
                 "lora_r8": "fixed-rank LoRA r 8"}
        a, b = (label.get(run_of(c[k]), run_of(c[k])) for k in ("model_a", "model_b"))
        data = f"cxr-lungs test ({c['n']}), full resolution" if e["split"] == "test" else f"clinic-sample val ({c['n']}), full resolution"
        tests.append({"what": f"{a} vs {b}", "data": data, "prompt": e["prompt"], "mean_difference": c["mean_difference"], "p": c["p_value"]})
    return tests


def accuracy_table(acc: dict) -> str:
    lines = ["| row | data | prompt | scored at | Dice mean ± std [95 % CI] | IoU | HD95 px (median) | NSD@2px | trainable | reduction | file MB |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in acc["rows"]:
        if r.get("status") == "not run":
            lines.append(f"| {r['row']} | – | – | – | not run yet | – | – | – | {fmt(r.get('trainable'), ',')} | "
                         f"{fmt(r.get('reduction'), '.1f')}x | – |" if r.get("trainable") is not None else
                         f"| {r['row']} | – | – | – | not run yet | – | – | – | – | – | – |")
            continue
        ci = f" [{r['dice_ci'][0]:.4f}, {r['dice_ci'][1]:.4f}]" if r.get("dice_ci") else ""
        ci = (f" ± {r['dice_std']:.4f}" if r.get("dice_std") is not None else "") + ci
        size = fmt(r["file_bytes"] / 1e6, ".2f") if r.get("file_bytes") else "–"
        red = f"{r['reduction']:.1f}x" if r.get("reduction") else "–"
        lines.append(f"| {r['row']} | {r['data']} | {r['prompt']} | {r['resolution']} | {fmt(r['dice'])}{ci} | "
                     f"{fmt(r.get('iou'), '.3f')} | {fmt(r.get('hd95_median'), '.1f')} | {fmt(r.get('nsd'), '.3f')} | "
                     f"{r['trainable']:,} | {red} | {size} |")
    return "\n".join(lines)


def latency_rows(kernels: dict) -> list[dict]:
    rows = []
    for threads in (1, 2):
        block = kernels["model"][f"{threads}_threads"]
        for key, label in (("fp32", "FP32"), ("int8_merged_cl", "INT8 merged + BN folded + channels_last (shipped)")):
            enc, dec = block[key]["encoder_ms"], block[key]["decoder_ms"]
            rows.append({"variant": label, "threads": threads, "encoder_ms": enc, "decoder_ms": dec, "end_to_end_ms": enc + dec})
    for threads in (1, 2):
        base = next(r for r in rows if r["threads"] == threads and r["variant"] == "FP32")
        for r in rows:
            if r["threads"] == threads:
                r["ratio_vs_fp32"] = round(r["end_to_end_ms"] / base["end_to_end_ms"], 3)
    return rows


def latency_table(rows: list[dict]) -> str:
    lines = ["| variant (torch runtime) | threads | encoder ms | decoder ms | encoder + decoder ms | ratio vs FP32 |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['threads']} | {r['encoder_ms']:.0f} | {r['decoder_ms']:.1f} | "
                     f"{r['end_to_end_ms']:.0f} | {r['ratio_vs_fp32']:.2f} |")
    return "\n".join(lines)


def onnx_runtime_table(speed: dict, accuracy: dict | None) -> str:
    """Torch FP32 / torch INT8 / ONNX Runtime INT8, interleaved in one run (bench_onnx_runtime.py)."""
    lines = ["| route | threads | encoder ms | ratio to twin | ratio to pretrained | end to end ms | ratio to twin | "
             "ratio to pretrained | mask Dice vs twin (mean, min) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    labels = {"lite_medsam_fp32": "pretrained LiteMedSAM, torch FP32 eager (the issue's reference)",
              "torch_fp32": "the model's float twin, torch FP32 (BN folded)", "torch_int8": "torch INT8 (oneDNN dynamic Linear)",
              "ort_int8": "ONNX Runtime INT8 (the package's graphs)"}
    for threads, rows in speed["threads"].items():
        for name, label in labels.items():
            r = rows.get(name)
            if r is None:
                continue
            agree = f"{r['mask_dice_vs_fp32_mean']:.4f}, {r['mask_dice_vs_fp32_min']:.4f}" if "mask_dice_vs_fp32_mean" in r else "–"
            lines.append(f"| {label} | {threads} | {r['encoder_ms']:.0f} | {r['encoder_ratio_to_fp32']:.3f} | "
                         f"{fmt(r.get('encoder_ratio_to_pretrained_fp32'), '.3f')} | {r['end_to_end_ms']:.0f} | "
                         f"{r['end_to_end_ratio_to_fp32']:.3f} | {fmt(r.get('end_to_end_ratio_to_pretrained_fp32'), '.3f')} | {agree} |")
    text = "\n".join(lines)
    if accuracy:
        a, w = accuracy["accuracy"], accuracy["accuracy"]["wilcoxon_ort_vs_torch_int8"]
        text += (f"\n\ncxr-lungs test ({a['ort_int8']['n']} images, automatic prompt, full resolution): torch INT8 "
                 f"{a['torch_int8']['dice_mean']:.4f}, ONNX Runtime INT8 {a['ort_int8']['dice_mean']:.4f} "
                 f"(paired Wilcoxon p = {w['p_value']:.3g}).")
    return text


def clinic_curve(clinic: dict) -> list[dict]:
    """Selection Dice after each epoch of the clinic run against minutes of CPU training."""
    row = clinic["rows"][0]
    plan = row.get("replanned", {})
    points, minutes = [], row["phases_planned_s"].get("training embeddings", 0.0) / 60
    steps_per_epoch = None
    for stage, step_key in (("stage1_history", "stage1_step_s"), ("stage2_history", "stage2_step_s")):
        previous_step = 0
        for h in row.get(stage, []):
            steps_per_epoch = h["step"] - previous_step
            previous_step = h["step"]
            minutes += steps_per_epoch * plan.get(step_key, 0.0) / 60
            points.append({"stage": stage[:6], "epoch": h["epoch"], "minutes": round(minutes, 2), "selection_dice": round(h["val_dice"], 4)})
    return points


def _save(fig, path: Path) -> str:
    """Write one report figure as the report links it; returns its file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_all(rank_pattern: dict, lat: list[dict], curve: list[dict], out: Path, extra: dict | None = None) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = []
    extra = extra or {}
    s1 = extra.get("stage1_issue14")
    retrain = s1["runs"]["everywhere"]["final_rank_pattern"] if s1 and "everywhere" in s1.get("runs", {}) else None
    layers = list(rank_pattern)
    fig, ax = plt.subplots(figsize=(10, 4))
    colours = ["tab:blue" if n.startswith("image_encoder") else "tab:orange" for n in layers]
    width = 0.45 if retrain else 0.8
    ax.bar([i - (width / 2 if retrain else 0) for i in range(len(layers))], [rank_pattern[n] for n in layers], width=width,
           color=colours, label="shipped model (H100 stage 1)")
    if retrain:
        ax.bar([i + width / 2 for i in range(len(layers))], [retrain.get(n, 0) for n in layers], width=width, color=colours,
               alpha=0.45, hatch="//", label="H200 retrain, same recipe (issue 14)")
        ax.legend(fontsize=7)
    ax.axhline(12, color="grey", lw=0.6, ls=":")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([short_layer(n) for n in layers], rotation=90, fontsize=6)
    ax.set_ylabel("final rank (init 12)")
    ax.set_title("Final AdaLoRA rank per layer (blue encoder qkv, orange decoder); fixed-rank LoRA keeps 12 (or 8) everywhere")
    names.append(_save(fig, out / "rank_pattern.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, threads in enumerate((1, 2)):
        sub = [r for r in lat if r["threads"] == threads]
        xs = [j + i * 0.4 for j in range(len(sub))]
        ax.bar(xs, [r["encoder_ms"] for r in sub], width=0.4, label=f"encoder, {threads} thread(s)")
        ax.bar(xs, [r["decoder_ms"] for r in sub], width=0.4, bottom=[r["encoder_ms"] for r in sub], color="grey",
               label="decoder" if i == 0 else None)
    ax.set_xticks([0.2, 1.2])
    ax.set_xticklabels(["FP32", "INT8 shipped"])
    ax.set_ylabel("ms per image (256 px, CPU, torch)")
    ax.legend(fontsize=8)
    names.append(_save(fig, out / "cpu_latency.png"))

    if curve:
        fig, ax = plt.subplots(figsize=(6, 4))
        for stage, marker in (("stage1", "o"), ("stage2", "s")):
            pts = [p for p in curve if p["stage"] == stage]
            ax.plot([p["minutes"] for p in pts], [p["selection_dice"] for p in pts], marker=marker, label=stage)
        ax.set_xlabel("minutes of CPU training (incl. encoding views)")
        ax.set_ylabel("selection Dice (5 images)")
        ax.set_title("Clinic fine-tune, decoder profile, 2-core VM")
        ax.legend()
        names.append(_save(fig, out / "clinic_dice_vs_minutes.png"))

    if s1:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, run in s1["runs"].items():
            h = run["history"]
            ax.plot([x["epoch"] for x in h], [x["val_dice"] for x in h], marker=".", label=f"{name} ({run['trainable']:,} trainable)")
            ax.plot([run["best_epoch"]], [run["val_dice_auto_256"]], "k*", ms=8)
        ax.set_ylim(0.93, 0.975)
        ax.set_xlabel("epoch")
        ax.set_ylabel("val Dice (auto, 256 px)")
        ax.set_title("Stage-1 runs on the H200 (star: checkpoint chosen on val)")
        ax.legend(fontsize=7)
        names.append(_save(fig, out / "stage1_val_curves.png"))

    gpu = extra.get("gpu_speed")
    if gpu:
        fig, ax = plt.subplots(figsize=(8, 4))
        rows = gpu["rows"]
        labels = [f"{r['backbone'].replace('lite_medsam', 'LiteMedSAM').replace('sam_vit_b', 'ViT-B')} {r['input_px']}\n"
                  f"{'train' if r['mode'].startswith('training') else 'infer'} b{r['batch']}"
                  f"{' bf16' if r['precision'].startswith('bf16') and not r['mode'].startswith('training') else ''}" for r in rows]
        ax.bar(range(len(rows)), [r["images_per_s"] for r in rows],
               color=["tab:red" if r["mode"].startswith("training") else "tab:green" for r in rows])
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, rotation=90, fontsize=6)
        ax.set_ylabel("images/s")
        ax.set_title(f"Whole pipeline on one {rows[0]['gpu']} (green inference, red training step)")
        names.append(_save(fig, out / "gpu_images_per_s.png"))

    sizes = extra.get("cpu_latency_vs_size")
    if sizes:
        fig, ax = plt.subplots(figsize=(6, 4))
        for what, marker in (("source image size", "o"), ("model input size", "s")):
            pts = [r for r in sizes["rows"] if r["what"] == what]
            if pts:
                ax.plot([r["px"] for r in pts], [r["end_to_end_ms"] / 1e3 for r in pts], marker=marker,
                        label=f"{pts[0]['model']}: {what}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("image side, px")
        ax.set_ylabel("seconds per image, end to end (CPU)")
        ax.set_title("CPU inference latency vs image size")
        ax.legend(fontsize=6)
        names.append(_save(fig, out / "cpu_latency_vs_size.png"))

    train = extra.get("cpu_train_vs_images")
    if train and any(r["exit"] == 0 for r in train["rows"]):
        ok = [r for r in train["rows"] if r["exit"] == 0]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r.get("train_images") or r["train_images_requested"] for r in ok], [r["wall_s"] / 60 for r in ok], marker="o")
        ax.set_xlabel("training images")
        ax.set_ylabel("minutes, wall clock (CPU)")
        ax.set_title(f"CPU fine-tune (decoder profile), {train['epochs']} + {train['qat_epochs']} epochs")
        ax.set_ylim(bottom=0)
        names.append(_save(fig, out / "cpu_train_vs_images.png"))
    return names


def short_layer(name: str) -> str:
    name = name.replace("image_encoder.layers.", "enc L").replace(".blocks.", " b").replace(".attn.qkv", " qkv")
    return name.replace("mask_decoder.transformer.", "dec ").replace("layers.", "L")


def gpu_table(gpu: dict) -> str:
    lines = ["| backbone | input px | mode | precision | batch | ms / batch | **images/s** | card |",
             "|---|---:|---|---|---:|---:|---:|---|"]
    for r in gpu["rows"]:
        lines.append(f"| {r['backbone']} | {r['input_px']} | {r['mode']} | {r['precision']} | {r['batch']} | "
                     f"{r['ms_per_batch']:.1f} | **{r['images_per_s']:.1f}** | {r['gpu']} |")
    return "\n".join(lines)


def size_table(sizes: dict) -> str:
    lines = ["| model | varied | px | set_image (letterbox + encoder) ms | predict (decoder + upsampling + clean-up) ms | end to end ms |",
             "|---|---|---:|---:|---:|---:|"]
    for r in sizes["rows"]:
        lines.append(f"| {r['model']} | {r['what']} | {r['px']} | {r['set_image_ms']:.0f} | {r['predict_ms']:.0f} | {r['end_to_end_ms']:.0f} |")
    return "\n".join(lines)


def train_images_table(train: dict) -> str:
    lines = ["| training images requested | trained on | selection images | views | wall clock s | exit |", "|---:|---:|---:|---:|---:|---:|"]
    for r in train["rows"]:
        lines.append(f"| {r['train_images_requested']} | {fmt(r.get('train_images'), 'd')} | {fmt(r.get('selection_images'), 'd')} | "
                     f"{fmt(r.get('views'), 'd')} | {r['wall_s']:.0f} | {r['exit']} |")
    return "\n".join(lines)


def machine_line(m: dict) -> str:
    load = m.get("load_average_at_start")
    load_text = f", load {load[0]:.1f} at start" if load else ""
    return f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('threads', '?')} torch threads{load_text}, torch {m.get('torch', '?')}"


def s1_runs_table(s1: dict) -> str:
    lines = ["| run | policy | rank | trainable | reduction | epochs | best epoch (val) | val Dice auto 256 px | final total rank | train s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in s1["runs"].items():
        rank = "–" if r["policy"] == "full" else (f"fixed {r['init_r']}" if r["policy"] == "lora" else f"{r['init_r']} -> {r['target_r']} (adaptive)")
        lines.append(f"| {name} | {r['policy']} | {rank} | {r['trainable']:,} | {r['reduction_vs_full']:.1f}x | {r['epochs']} | "
                     f"{r['best_epoch']} | {r['val_dice_auto_256']:.4f} | {r['final_total_rank'] or '–'} | {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def render(acc: dict, lat: list[dict], curve: list[dict], card: dict, plots: list[str], extra: dict | None = None) -> str:
    extra = extra or {}
    s1, gpu, sizes, train = (extra.get(k) for k in ("stage1_issue14", "gpu_speed", "cpu_latency_vs_size", "cpu_train_vs_images"))
    tests = "\n".join(f"- {t['what']}: " + (f"{t['mean_difference']:+.4f}, p = {t['p']:.2g} ({t['data']}, {t['prompt']})"
                                            if t.get("status") != "not run" else "not run yet") for t in acc["tests"])
    commands = sorted({r["command"] for r in acc["rows"] if r.get("command")})
    total = card["adapter"]["final_total_rank"]
    init = card["adapter"]["init_r"] * len(card["adapter"]["final_rank_pattern"])
    missing = []
    parts = [BEGIN,
             "## Report (issue 14, generated by `python benchmarks/make_report.py`; edit the JSON, not this block)",
             "",
             "### Accuracy",
             "",
             f"Protocol: {acc['protocol']}. {acc['what']}",
             "",
             accuracy_table(acc),
             "",
             "Paired Wilcoxon signed-rank tests on per-image Dice (difference = first minus second):",
             "",
             tests,
             "",
             "Commands behind the rows:",
             "",
             "```bash", *commands, "```",
             ""]
    if s1:
        parts += ["#### The issue-14 stage-1 runs (full fine-tuning, AdaLoRA control, fixed-rank LoRA)",
                  "",
                  f"Data: {s1['data']}. Training: {s1['train_machine']}; `{s1['train_command']}`. Selection: {s1['selection']}. "
                  f"Scoring: {s1['score_machine']}; `{s1['score_command']}`. Fixed-rank LoRA is the `lora` policy of "
                  "`core/training/adapters.py`: AdaLoRA's SVD-form adapters on the same modules as `everywhere` with rank allocation "
                  "disabled; r 12 has exactly AdaLoRA's trainable parameters (AdaLoRA trains 12 ranks per module and prunes to "
                  "8 on average), r 8 keeps AdaLoRA's final budget (360 ranks) spread evenly.",
                  "",
                  s1_runs_table(s1),
                  "",
                  *[f"- {note}" for note in s1.get("notes", [])],
                  *([""] if s1.get("notes") else [])]
    else:
        missing.append("the issue-14 stage-1 runs")
    parts += [f"Final AdaLoRA rank pattern of the shipped model (`model.json` -> `adapter.final_rank_pattern`): total {total} of {init} initial.",
              "",
              "### CPU latency per image",
              "",
              f"{acc['latency_source']}. Ratios are from one run.",
              "",
              latency_table(lat),
              ""]
    if sizes:
        parts += ["### CPU inference latency vs image size",
                  "",
                  f"{sizes['what']}. Data: {sizes['data']}. Prompt: {sizes['prompt']}. Machine: {machine_line(sizes['machine'])} "
                  "(shared with other work: absolute times swing, the shape of the curve is the result). "
                  f"Command: `{sizes['command']}`.",
                  "",
                  size_table(sizes),
                  ""]
    else:
        missing.append("latency vs image size")
    if train:
        parts += ["### CPU training time vs number of training images",
                  "",
                  f"{train['what']}. Data: {train['data']}. Model: {train['model']}. {train['epochs']} stage-1 epochs + "
                  f"{train['qat_epochs']} QAT epoch. Machine: {machine_line(train['machine'])}. Command: `{train['command']}`.",
                  "",
                  train_images_table(train),
                  "",
                  *([train["note"] + ".", ""] if train.get("note") else [])]
        ok = [r for r in train["rows"] if r["exit"] == 0]
        if len(ok) < 2:
            missing.append(f"a training-time curve (measured only at N = {', '.join(str(r['train_images_requested']) for r in ok)}; "
                           f"the sweep `{train['command']}` did not fit the loaded 2-core VM's time)")
    else:
        missing.append("training time vs number of images")
    parts += ["### Clinic fine-tune: Dice vs minutes of CPU training",
              "",
              "Data clinic-sample (30 train, 5 selection), model `default` continued with the decoder profile, auto prompt, "
              "2-core VM, `python benchmarks/bench_clinic_finetune.py --budget 900`; minutes from the run's measured step times.",
              "",
              "| stage | epoch | minutes | selection Dice |", "|---|---:|---:|---:|",
              *[f"| {p['stage']} | {p['epoch']} | {p['minutes']:.1f} | {p['selection_dice']:.4f} |" for p in curve],
              ""]
    if gpu:
        parts += ["### GPU: images/s of the whole pipeline",
                  "",
                  f"{gpu['what']}. Data: {gpu['data']}. Prompt: {gpu['prompt']}. Model: {gpu['model']}. "
                  f"Machine: {gpu['machine']['lent_kind']}, `nvidia-smi`: {gpu['machine']['nvidia_smi']}; torch {gpu['machine']['torch']}, "
                  f"CUDA {gpu['machine']['cuda']}. Command: `{gpu['command']}`.",
                  "",
                  gpu_table(gpu),
                  ""]
        if s1:
            runs = s1["runs"].values()
            images = sum(r["epochs"] * 246 for r in runs)  # cxr-lungs train split, every epoch
            longest = max(r["train_seconds"] for r in runs)
            parts += [f"The real trainer on the same card (the {len(s1['runs'])} stage-1 runs above, side by side, data loading "
                      f"on 3 CPU workers each, validation included): {min(r['train_seconds'] for r in runs):.0f}-{longest:.0f} s "
                      f"for 20 epochs of 246 images, {images / longest:.0f} training images/s together.", ""]
    else:
        missing.append("GPU images/s")
    parts += ["### Plots",
              "",
              *[f"![{name}](benchmarks/results/plots/{name})" for name in plots],
              ""]
    onnx = extra.get("onnx_runtime")
    if onnx:
        at = parts.index("### Plots")
        parts[at:at] = ["### ONNX Runtime INT8 vs torch, CPU", "",
                        f"`python benchmarks/bench_onnx_runtime.py --images {onnx['images']} --threads "
                        f"{' '.join(onnx['threads'])}` ({onnx['images']} cxr-lungs images, shipped model, automatic "
                        f"prompt, {onnx['machine']}, {onnx['measured_at']}); ratios are medians of per-image ratios "
                        "to torch FP32 in the same run, routes interleaved.", "",
                        onnx_runtime_table(onnx, extra.get("onnx_runtime_accuracy")), ""]
    else:
        missing.append("ONNX Runtime latency")
    parts += ["Not yet in this report: " + ", ".join(missing) + ".", END]
    return "\n".join(parts)


def write_block(path: Path, block: str) -> None:
    text = path.read_text()  # re-read right before writing: others edit other sections
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, count=1, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--card", type=Path, default=ROOT / "resources" / "models" / "default" / "model.json")
    parser.add_argument("--benchmarks-md", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    acc = json.loads((args.results / "accuracy.json").read_text())
    extra = {name: json.loads((args.results / f"{name}.json").read_text())
             for name in ("stage1_issue14", "gpu_speed", "cpu_latency_vs_size", "cpu_train_vs_images",
                          "onnx_runtime", "onnx_runtime_accuracy")
             if (args.results / f"{name}.json").is_file()}
    s1 = extra.get("stage1_issue14")
    acc["rows"] = [row for spec in acc["rows"] for row in (stage1_rows(spec, s1) if spec.get("source") == "stage1_issue14" else [spec])]
    acc["tests"] = [t for spec in acc["tests"] for t in (stage1_tests(s1) if spec.get("source") == "stage1_issue14" else [spec])]
    lat = latency_rows(json.loads((args.results / "int8_kernels.json").read_text()))
    curve = clinic_curve(json.loads((args.results / "clinic_finetune.json").read_text()))
    card = json.loads(args.card.read_text())
    plots = [] if args.no_plots else plot_all(card["adapter"]["final_rank_pattern"], lat, curve, args.results / "plots", extra)
    (args.results / "report.json").write_text(json.dumps({"accuracy_rows": acc["rows"], "tests": acc["tests"], "latency": lat,
                                                          "clinic_curve": curve, "plots": plots,
                                                          "rank_pattern": card["adapter"]["final_rank_pattern"]}, indent=1))
    write_block(args.benchmarks_md, render(acc, lat, curve, card, plots, extra))
    print(f"wrote {args.benchmarks_md} report block, {len(plots)} plots")


if __name__ == "__main__":
    main()
