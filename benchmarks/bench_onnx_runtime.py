"""ONNX Runtime INT8 vs torch INT8 vs torch FP32, same weights: speed (interleaved) and accuracy.

    python benchmarks/bench_onnx_runtime.py --model resources/models/default --images 30 --threads 1 2
    python benchmarks/bench_onnx_runtime.py --accuracy-split test      # + cxr-lungs test Dice per runtime

Routes: ``lite_medsam_fp32`` = pretrained LiteMedSAM in torch FP32 eager (the issue's reference,
other weights, BatchNorm unfolded; "vs pre" columns), ``torch_fp32`` = the model's exact float twin (every INT8 Linear dequantised, BatchNorm folded
as shipped), ``torch_int8`` = today's torch dynamic INT8 Linear, ``ort_int8`` = the package's ONNX
Runtime graphs (the model's own int8 weights). Per round, each route runs encoder and end to end
(encoder + automatic-mode decoder + post-processing, ``Predictor``) on the same image, routes
interleaved, so machine load hits all alike; ratios are medians of per-round ratios to torch FP32.
Mask agreement: Dice of each INT8 route's mask against the FP32 twin's on the same images. With
``--accuracy-split``, each route is scored against the cxr-lungs masks (full resolution, automatic
prompt) with a paired Wilcoxon of ORT vs torch INT8. Writes ``benchmarks/results/onnx_runtime.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    import os

    return Path(os.environ.get("ADAQAT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def routes(model_dir: Path) -> dict:
    from core.models.loading import LoadedModel, load_model_dir
    from core.training.parent import dequantised_copy

    torch_int8 = load_model_dir(model_dir, runtime="torch")
    fp32 = LoadedModel(dequantised_copy(torch_int8.module).eval(), torch_int8.info, torch_int8.image_size)
    ort = load_model_dir(model_dir, runtime="onnxruntime")
    return {"torch_fp32": fp32, "torch_int8": torch_int8, "ort_int8": ort}


def pretrained_fp32():
    """The issue's reference: pretrained LiteMedSAM in torch FP32 eager (BatchNorm not folded), other weights."""
    from core.models.loading import load_model

    return load_model("lite_medsam", "cpu", runtime="torch")


def dice(a, b) -> float:
    import numpy as np

    a, b = a > 0, b > 0
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def speed(model_dir: Path, images: list, threads: int) -> dict:
    import torch

    from core.segment.predictor import Predictor
    from core.segment.preprocess import letterbox_image, to_model_tensor

    torch.set_num_threads(threads)
    loaded = routes(model_dir)  # ORT sessions take the torch thread count at creation
    loaded["lite_medsam_fp32"] = pretrained_fp32()
    predictors = {name: Predictor(model) for name, model in loaded.items()}
    times = {name: {"encoder": [], "end_to_end": []} for name in loaded}
    masks = {name: [] for name in loaded}
    for index, gray in enumerate(images):
        tensor = to_model_tensor(letterbox_image(gray, 256)[0])
        for name, model in loaded.items():
            with torch.inference_mode():
                start = time.perf_counter()
                model.module.encode(tensor)
                encoder = time.perf_counter() - start
            start = time.perf_counter()
            result = predictors[name].segment(gray)
            end_to_end = time.perf_counter() - start
            if index:  # the first image warms caches and sessions up
                times[name]["encoder"].append(encoder)
                times[name]["end_to_end"].append(end_to_end)
            masks[name].append(result.mask)
    out = {}
    for name in loaded:
        row = {f"{part}_ms": round(1000 * statistics.median(values), 1) for part, values in times[name].items()}
        for part in ("encoder", "end_to_end"):
            ratios = [a / b for a, b in zip(times[name][part], times["torch_fp32"][part])]
            row[f"{part}_ratio_to_fp32"] = round(statistics.median(ratios), 3)
        for part in ("encoder", "end_to_end"):  # the ratio the aims are stated against
            ratios = [a / b for a, b in zip(times[name][part], times["lite_medsam_fp32"][part])]
            row[f"{part}_ratio_to_pretrained_fp32"] = round(statistics.median(ratios), 3)
        if name not in ("torch_fp32", "lite_medsam_fp32"):
            agreement = [dice(m, f) for m, f in zip(masks[name], masks["torch_fp32"])]
            row["mask_dice_vs_fp32_mean"] = round(statistics.mean(agreement), 4)
            row["mask_dice_vs_fp32_min"] = round(min(agreement), 4)
        out[name] = row
    agreement = [dice(a, b) for a, b in zip(masks["ort_int8"], masks["torch_int8"])]
    out["ort_vs_torch_int8_mask_dice_mean"] = round(statistics.mean(agreement), 4)
    return out


def accuracy(model_dir: Path, split: str) -> dict:
    import torch

    from core.evaluation.runner import compare, evaluate
    from core.models.card import read_model_card
    from core.models.loading import LoadedModel
    from core.models.artifact import verified_weights_path
    from core.models.onnx_runtime import OnnxRuntimeSegmenter
    from core.io.manifest import read_manifest

    samples = [s for s in read_manifest(shared_data() / "cxr-lungs" / "manifest.csv").samples if s.split == split]
    loaded = routes(model_dir)
    chosen = loaded["ort_int8"].module.activation_bits
    evaluations = {name: evaluate(loaded[name], samples) for name in ("torch_int8", "ort_int8")}
    other = 15 - chosen  # the width the loader did not pick on this CPU, for the record
    torch_int8 = loaded["torch_int8"]
    card = read_model_card(model_dir)
    segmenter = OnnxRuntimeSegmenter.from_model_dir(model_dir, card, verified_weights_path(model_dir, card),
                                                    torch.get_num_threads(), activation_bits=other)
    evaluations[f"ort_int8_a{other}"] = evaluate(
        LoadedModel(segmenter, torch_int8.info, torch_int8.image_size, "onnxruntime"), samples)
    rows = {name: {"dice_mean": round(e.summaries()["dice"].mean, 4), "n": len(e.per_image)}
            for name, e in evaluations.items()}
    rows["ort_int8"]["activation_bits"] = chosen
    rows["wilcoxon_ort_vs_torch_int8"] = compare(evaluations["ort_int8"], evaluations["torch_int8"])
    rows[f"wilcoxon_ort_a{other}_vs_ort"] = compare(evaluations[f"ort_int8_a{other}"], evaluations["ort_int8"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "resources" / "models" / "default"))
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="none: accuracy only")
    parser.add_argument("--accuracy-split", default=None, help="also score cxr-lungs SPLIT per runtime")
    parser.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "onnx_runtime.json"))
    args = parser.parse_args()

    import cv2

    from core.io.loader import load_study
    from core.io.model_input import model_gray

    paths = sorted((shared_data() / "cxr-lungs" / "images").glob("*.jpg"))[: args.images + 1]
    images = [model_gray(load_study(p)) for p in paths]
    del cv2
    model_dir = Path(args.model)
    report = {"model": str(model_dir), "images": len(images) - 1, "machine": platform.processor() or platform.machine(),
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threads": {}}
    for threads in args.threads:
        rows = speed(model_dir, images, threads)
        report["threads"][str(threads)] = rows
        print(f"\n{threads} thread(s), {len(images) - 1} cxr-lungs images, automatic prompt")
        print(f"{'route':16} {'encoder ms':>10} {'ratio':>6} {'vs pre':>6} {'end-to-end ms':>13} {'ratio':>6} "
              f"{'vs pre':>6} {'Dice vs FP32':>12}")
        for name in ("lite_medsam_fp32", "torch_fp32", "torch_int8", "ort_int8"):
            r = rows[name]
            agreement = f"{r['mask_dice_vs_fp32_mean']:.4f}" if "mask_dice_vs_fp32_mean" in r else "-"
            print(f"{name:16} {r['encoder_ms']:10.1f} {r['encoder_ratio_to_fp32']:6.3f} "
                  f"{r['encoder_ratio_to_pretrained_fp32']:6.3f} {r['end_to_end_ms']:13.1f} "
                  f"{r['end_to_end_ratio_to_fp32']:6.3f} {r['end_to_end_ratio_to_pretrained_fp32']:6.3f} {agreement:>12}")
        print(f"ORT vs torch INT8 mask Dice: {rows['ort_vs_torch_int8_mask_dice_mean']:.4f}")
    if args.accuracy_split:
        report["accuracy"] = accuracy(model_dir, args.accuracy_split)
        a = report["accuracy"]
        w = a["wilcoxon_ort_vs_torch_int8"]
        other = next(k for k in a if k.startswith("ort_int8_a"))
        w_other = a[f"wilcoxon_{other.replace('_int8', '')}_vs_ort"]
        print(f"\ncxr-lungs {args.accuracy_split} Dice: torch INT8 {a['torch_int8']['dice_mean']:.4f}, "
              f"ORT INT8 {a['ort_int8']['dice_mean']:.4f} ({a['ort_int8']['activation_bits']}-bit activations, this CPU's "
              f"choice; n={a['ort_int8']['n']}; paired Wilcoxon vs torch p={w['p_value']:.3g}); "
              f"{other[-1]}-bit {a[other]['dice_mean']:.4f} (vs the choice p={w_other['p_value']:.3g})")
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
