"""Regenerate the report block of BENCHMARKS.md (issue 14) from stored results JSON.

    python benchmarks/make_report.py            # render tables + PNG plots from benchmarks/results/*.json

Reads benchmarks/results/{accuracy,int8_kernels,clinic_finetune}.json and the shipped model's
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


def accuracy_table(acc: dict) -> str:
    lines = ["| row | data | prompt | scored at | Dice mean [95 % CI] | IoU | HD95 px (median) | NSD@2px | trainable | reduction | file MB |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in acc["rows"]:
        if r.get("status") == "not run":
            lines.append(f"| {r['row']} | – | – | – | not run yet | – | – | – | {fmt(r.get('trainable'), ',')} | "
                         f"{fmt(r.get('reduction'), '.1f')}x | – |" if r.get("trainable") is not None else
                         f"| {r['row']} | – | – | – | not run yet | – | – | – | – | – | – |")
            continue
        ci = f" [{r['dice_ci'][0]:.4f}, {r['dice_ci'][1]:.4f}]" if r.get("dice_ci") else ""
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


def plot_all(rank_pattern: dict, lat: list[dict], curve: list[dict], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = []
    layers = list(rank_pattern)
    fig, ax = plt.subplots(figsize=(10, 4))
    colours = ["tab:blue" if n.startswith("image_encoder") else "tab:orange" for n in layers]
    ax.bar(range(len(layers)), [rank_pattern[n] for n in layers], color=colours)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([short_layer(n) for n in layers], rotation=90, fontsize=6)
    ax.set_ylabel("final rank")
    ax.set_title("Shipped model: final AdaLoRA rank per layer (blue encoder qkv, orange decoder)")
    fig.tight_layout()
    fig.savefig(out / "rank_pattern.png", dpi=110)
    plt.close(fig)
    names.append("rank_pattern.png")

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
    fig.tight_layout()
    fig.savefig(out / "cpu_latency.png", dpi=110)
    plt.close(fig)
    names.append("cpu_latency.png")

    if curve:
        fig, ax = plt.subplots(figsize=(6, 4))
        for stage, marker in (("stage1", "o"), ("stage2", "s")):
            pts = [p for p in curve if p["stage"] == stage]
            ax.plot([p["minutes"] for p in pts], [p["selection_dice"] for p in pts], marker=marker, label=stage)
        ax.set_xlabel("minutes of CPU training (incl. encoding views)")
        ax.set_ylabel("selection Dice (5 images)")
        ax.set_title("Clinic fine-tune, decoder profile, 2-core VM")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "clinic_dice_vs_minutes.png", dpi=110)
        plt.close(fig)
        names.append("clinic_dice_vs_minutes.png")
    return names


def short_layer(name: str) -> str:
    name = name.replace("image_encoder.layers.", "enc L").replace(".blocks.", " b").replace(".attn.qkv", " qkv")
    return name.replace("mask_decoder.transformer.", "dec ").replace("layers.", "L")


def render(acc: dict, lat: list[dict], curve: list[dict], card: dict, plots: list[str]) -> str:
    tests = "\n".join(f"- {t['what']}: " + (f"{t['mean_difference']:+.4f}, p = {t['p']:.2g} ({t['data']}, {t['prompt']})"
                                            if t.get("status") != "not run" else "not run yet") for t in acc["tests"])
    commands = sorted({r["command"] for r in acc["rows"] if r.get("command")})
    total = card["adapter"]["final_total_rank"]
    init = card["adapter"]["init_r"] * len(card["adapter"]["final_rank_pattern"])
    parts = [BEGIN,
             "## Report (issue 14, generated by `python benchmarks/make_report.py`; edit the JSON, not this block)",
             "",
             "### Accuracy",
             "",
             f"Protocol: {acc['protocol']}. {acc['what']}",
             "",
             accuracy_table(acc),
             "",
             tests,
             "",
             "Commands behind the rows:",
             "",
             "```bash", *commands, "```",
             "",
             f"Final AdaLoRA rank pattern of the shipped model (`model.json` -> `adapter.final_rank_pattern`): total {total} of {init} initial.",
             "",
             "### CPU latency per image",
             "",
             f"{acc['latency_source']}. Ratios are from one run.",
             "",
             latency_table(lat),
             "",
             "### Clinic fine-tune: Dice vs minutes of CPU training",
             "",
             "Data clinic-sample (30 train, 5 selection), model `default` continued with the decoder profile, auto prompt, "
             "2-core VM, `python benchmarks/bench_clinic_finetune.py --budget 900`; minutes from the run's measured step times.",
             "",
             "| stage | epoch | minutes | selection Dice |", "|---|---:|---:|---:|",
             *[f"| {p['stage']} | {p['epoch']} | {p['minutes']:.1f} | {p['selection_dice']:.4f} |" for p in curve],
             "",
             "### Plots",
             "",
             *[f"![{name}](benchmarks/results/plots/{name})" for name in plots],
             "",
             "Not yet in this report: full fine-tuning and fixed-rank LoRA rows (GPU retrains), clinic-sample rows for the "
             "FP32 models, ONNX Runtime latency, latency vs image size, training time vs number of images, GPU images/s "
             "for LiteMedSAM and SAM ViT-B at 512/1024 px.",
             END]
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
    lat = latency_rows(json.loads((args.results / "int8_kernels.json").read_text()))
    curve = clinic_curve(json.loads((args.results / "clinic_finetune.json").read_text()))
    card = json.loads(args.card.read_text())
    plots = [] if args.no_plots else plot_all(card["adapter"]["final_rank_pattern"], lat, curve, args.results / "plots")
    (args.results / "report.json").write_text(json.dumps({"latency": lat, "clinic_curve": curve, "plots": plots,
                                                          "rank_pattern": card["adapter"]["final_rank_pattern"]}, indent=1))
    write_block(args.benchmarks_md, render(acc, lat, curve, card, plots))
    print(f"wrote {args.benchmarks_md} report block, {len(plots)} plots")


if __name__ == "__main__":
    main()
