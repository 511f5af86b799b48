"""INT8 on CPU for LiteMedSAM: which kernel route, and what it buys on the whole encoder.

    python benchmarks/bench_int8_kernels.py                  # kernels + whole model, 1 and 2 threads
    python benchmarks/bench_int8_kernels.py --emulate avx2   # also rerun with oneDNN/fbgemm/MKL/ATen
                                                             # capped at AVX2 (a CPU without VNNI)
    python benchmarks/bench_int8_kernels.py --parts accuracy --accuracy 30   # mask agreement only

``--parts`` picks sections; sections not run are kept from the existing JSON (each has its own
``measured_at``). On a busy 2-core machine a full run takes 15-40 min.

Part 1, kernels: LiteMedSAM's real Linear layers, fed the activations they see on a real chest X-ray,
FP32 ``nn.Linear`` against each INT8 route:

- ``ao_dyn_fbgemm``: ``torch.ao.nn.quantized.dynamic.Linear`` as PyTorch ships it on x86 (fbgemm,
  per-tensor dynamic activations with reduce_range, i.e. 7 bits);
- ``ao_dyn_onednn`` (chosen where the CPU has VNNI/AMX, ``core.models.int8.Int8Linear``): same op,
  weights packed for oneDNN, 8-bit per-tensor activations (7-bit when the ISA lacks VNNI: 8 bits
  saturate there);
- ``torchao``: ``quantize_(m, Int8DynamicActivationInt8WeightConfig())`` (per-token activations);
- ``int_mm_tok``: per-token int8 quantisation in eager PyTorch + ``torch._int_mm``;
- ``onednn_tok``: per-token int8 quantisation in eager PyTorch + ``onednn::qlinear_pointwise``.

Routes are interleaved within each round (a sample = best of 3 calls), so load from other processes
hits all routes alike; times are medians over rounds and ``ratio`` is the median over rounds of the
per-round FP32 time / INT8 time (> 1 = INT8 faster); ``rel_err`` = ||y_int8 - y_fp32|| / ||y_fp32||
on the real activations.

Part 2, whole image encoder (and the mask decoder), same interleaving: FP32, FP32 + BatchNorm folded,
+ channels-last input, INT8 ``paper`` and ``merged`` policies (BatchNorm folded, with and without
channels-last).

Writes ``benchmarks/results/int8_kernels.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ISA_CAPS = {
    "avx2": {
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
    },
    "avx2_vnni": {
        "ONEDNN_MAX_CPU_ISA": "AVX2_VNNI",
        "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
    },
}

# (label, qualified name) of the layers benchmarked; one block per TinyViT stage + the decoder
LAYERS = [
    ("L1.qkv", "image_encoder.layers.1.blocks.0.attn.qkv"),
    ("L1.proj", "image_encoder.layers.1.blocks.0.attn.proj"),
    ("L1.fc1", "image_encoder.layers.1.blocks.0.mlp.fc1"),
    ("L1.fc2", "image_encoder.layers.1.blocks.0.mlp.fc2"),
    ("L2.qkv", "image_encoder.layers.2.blocks.0.attn.qkv"),
    ("L2.proj", "image_encoder.layers.2.blocks.0.attn.proj"),
    ("L2.fc1", "image_encoder.layers.2.blocks.0.mlp.fc1"),
    ("L2.fc2", "image_encoder.layers.2.blocks.0.mlp.fc2"),
    ("L3.qkv", "image_encoder.layers.3.blocks.0.attn.qkv"),
    ("L3.proj", "image_encoder.layers.3.blocks.0.attn.proj"),
    ("L3.fc1", "image_encoder.layers.3.blocks.0.mlp.fc1"),
    ("L3.fc2", "image_encoder.layers.3.blocks.0.mlp.fc2"),
    ("dec.t2i.k_proj", "mask_decoder.transformer.layers.0.cross_attn_token_to_image.k_proj"),
    ("dec.i2t.out_proj", "mask_decoder.transformer.layers.0.cross_attn_image_to_token.out_proj"),
    ("dec.mlp.lin1", "mask_decoder.transformer.layers.0.mlp.lin1"),
    ("dec.mlp.lin2", "mask_decoder.transformer.layers.0.mlp.lin2"),
    ("dec.hyper.0", "mask_decoder.output_hypernetworks_mlps.0.layers.0"),
]


def _quiet():
    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)


def _timed(fn, arg, calls: int = 3) -> float:
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        fn(arg)
        best = min(best, time.perf_counter() - start)
    return best


def _interleaved(fns: dict, arg, rounds: int, calls: int = 3) -> tuple[dict[str, float], dict[str, float]]:
    """Routes alternate within each round; each sample is the best of ``calls`` calls.

    Returns (median ms per route, median over rounds of the per-round ratio first-route / route):
    the per-round ratio compares measurements taken seconds apart, which cancels most of the load
    that other processes put on the machine.
    """
    for fn in fns.values():
        fn(arg)  # warm-up (packing, primitive caches)
    samples = {k: [] for k in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            samples[key].append(_timed(fn, arg, calls))
    base = next(iter(fns))
    ratios = {k: statistics.median(b / t for b, t in zip(samples[base], v)) for k, v in samples.items()}
    return {k: statistics.median(v) * 1e3 for k, v in samples.items()}, ratios


# --------------------------------------------------------------------------------------------------
# routes


def _routes(linear):
    import torch
    from torch import nn

    from core.models.int8 import Int8Linear, quantize_weight

    routes = {"fp32": linear}
    routes["ao_dyn_fbgemm"] = Int8Linear.from_float(linear, engine="fbgemm")
    routes["ao_dyn_onednn"] = Int8Linear.from_float(linear, engine="onednn")
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        wrapped = nn.Sequential(copy.deepcopy(linear))
        quantize_(wrapped, Int8DynamicActivationInt8WeightConfig())
        routes["torchao"] = wrapped
    except Exception as error:  # noqa: BLE001 - report, keep benchmarking
        print(f"torchao route unavailable: {error}")

    q, scale = quantize_weight(linear.weight)
    bias = linear.bias.detach().float()

    def per_token(x2):
        amax = torch.linalg.vector_norm(x2, float("inf"), dim=1, keepdim=True).clamp_min_(1e-12)
        return torch.mul(x2, 127.0 / amax).round_().to(torch.int8), amax

    q_t = q.t().contiguous()

    def int_mm_tok(x):
        x2 = x.reshape(-1, x.shape[-1])
        xq, amax = per_token(x2)
        y = torch._int_mm(xq, q_t).float().mul_(scale)
        return torch.addcmul(bias, y, amax, value=1 / 127).view(*x.shape[:-1], -1)

    routes["int_mm_tok"] = int_mm_tok
    try:
        packed = torch.ops.onednn.qlinear_prepack(q, None)
        zero = torch.zeros(q.shape[0], dtype=torch.long)

        def onednn_tok(x):
            x2 = x.reshape(-1, x.shape[-1])
            xq, amax = per_token(x2)
            y = torch.ops.onednn.qlinear_pointwise(
                xq, 1.0, 0, packed, scale, zero, None, 1.0, 0, torch.float32, "none", [], ""
            )
            return torch.addcmul(bias, y, amax, value=1 / 127).view(*x.shape[:-1], -1)

        onednn_tok(torch.zeros(2, q.shape[1]))
        routes["onednn_tok"] = onednn_tok
    except Exception as error:  # noqa: BLE001
        print(f"onednn per-token route unavailable: {error}")
    return routes


def _real_activations(model, gray):
    """Inputs of the benchmarked Linear layers on one real image (whole-image box)."""
    import torch

    from core.segment.preprocess import letterbox_image, to_model_tensor

    wanted = dict((name, label) for label, name in LAYERS)
    captured = {}
    hooks = []
    def keep_input(key):
        def hook(_module, inputs, _output):
            captured.setdefault(key, inputs[0].detach().clone())  # returns None: output unchanged
        return hook

    for name, module in model.named_modules():
        if name in wanted:
            hooks.append(module.register_forward_hook(keep_input(name)))
    padded, box = letterbox_image(gray, model.image_size)
    with torch.inference_mode():
        embedding = model.encode(to_model_tensor(padded))
        model.decode(embedding, boxes=torch.from_numpy(box.whole_image_box())[None])
    for hook in hooks:
        hook.remove()
    return captured


def bench_kernels(model, gray, threads: int, rounds: int) -> list[dict]:
    import torch

    torch.set_num_threads(threads)
    activations = _real_activations(model, gray)
    rows = []
    with torch.inference_mode():
        for label, name in LAYERS:
            linear = model.get_submodule(name)
            x = activations[name]
            routes = _routes(linear)
            reference = linear(x)
            errors = {k: float((f(x) - reference).norm() / reference.norm()) for k, f in routes.items()}
            times, ratios = _interleaved(routes, x, rounds)
            tokens = x.numel() // x.shape[-1]
            for route, ms in times.items():
                if route == "fp32":
                    continue
                rows.append({
                    "threads": threads, "layer": label, "name": name, "tokens": tokens,
                    "in": linear.in_features, "out": linear.out_features, "route": route,
                    "fp32_ms": round(times["fp32"], 4), "int8_ms": round(ms, 4),
                    "ratio": round(ratios[route], 3), "rel_err": round(errors[route], 5),
                })
            print(f"  [{threads}T] {label:17s} M={tokens:6d} {linear.in_features:5d}->{linear.out_features:<5d} "
                  f"fp32 {times['fp32']:7.2f} ms | "
                  + " ".join(f"{r} {ratios[r]:4.2f}x" for r in times if r != "fp32"),
                  flush=True)
    return rows


# --------------------------------------------------------------------------------------------------
# whole model


def _variants(model):
    from core.models.inference_opt import channels_last_encoder, fold_batchnorm
    from core.models.int8 import POLICIES, quantize_linear_layers

    folded = copy.deepcopy(model)
    fold_batchnorm(folded)
    variants = {
        "fp32": model,
        "fp32_bnfold": folded,
        "fp32_bnfold_cl": channels_last_encoder(copy.deepcopy(folded)),
    }
    for policy in ("paper", "merged"):
        quantized = quantize_linear_layers(copy.deepcopy(folded), POLICIES[policy])
        variants[f"int8_{policy}"] = quantized
        variants[f"int8_{policy}_cl"] = channels_last_encoder(copy.deepcopy(quantized))
    return variants


def bench_model(model, gray, threads: int, rounds: int, variants: dict) -> dict:
    import torch

    from core.segment.preprocess import letterbox_image, to_model_tensor

    torch.set_num_threads(threads)
    padded, box = letterbox_image(gray, model.image_size)
    image = to_model_tensor(padded)
    boxes = torch.from_numpy(box.whole_image_box())[None]
    with torch.inference_mode():
        encoders = {k: v.encode for k, v in variants.items()}
        enc, enc_ratio = _interleaved(encoders, image, rounds, calls=1)
        embedding = model.encode(image)
        decoders = {k: (lambda e, v=v: v.decode(e, boxes=boxes)) for k, v in variants.items()}
        dec, dec_ratio = _interleaved(decoders, embedding, rounds, calls=5)
    result = {}
    for key in variants:
        result[key] = {
            "encoder_ms": round(enc[key], 1), "encoder_speedup": round(enc_ratio[key], 3),
            "decoder_ms": round(dec[key], 2), "decoder_speedup": round(dec_ratio[key], 3),
        }
        print(f"  [{threads}T] {key:16s} encoder {enc[key]:8.1f} ms ({enc_ratio[key]:4.2f}x)   "
              f"decoder {dec[key]:6.2f} ms ({dec_ratio[key]:4.2f}x)", flush=True)
    return result


def _start_hook(starts, key):
    def hook(_module, _inputs):
        starts[key] = time.perf_counter()
    return hook


def _stop_hook(starts, totals, key, kind):
    def hook(_module, _inputs, _output):
        totals[kind] += time.perf_counter() - starts[key]
    return hook


def encoder_profile(model, gray, threads: int) -> dict:
    """FP32 encoder time share per op kind (module hooks; 'other' = attention matmuls, reshapes, adds)."""
    import collections

    import torch
    from torch import nn

    from core.segment.preprocess import letterbox_image, to_model_tensor

    torch.set_num_threads(threads)
    image = model.normalize(to_model_tensor(letterbox_image(gray, model.image_size)[0]))
    totals = collections.defaultdict(float)
    starts = {}
    hooks = []
    for name, module in model.image_encoder.named_modules():
        kind = None
        if isinstance(module, nn.Conv2d):
            kind = "conv_depthwise" if module.groups > 1 else f"conv{module.kernel_size[0]}x{module.kernel_size[1]}"
        elif isinstance(module, nn.BatchNorm2d):
            kind = "batchnorm"
        elif isinstance(module, nn.Linear):
            kind = "linear"
        elif isinstance(module, nn.GELU):
            kind = "gelu"
        elif isinstance(module, nn.LayerNorm):
            kind = "layernorm"
        if kind:
            hooks.append(module.register_forward_pre_hook(_start_hook(starts, name)))
            hooks.append(module.register_forward_hook(_stop_hook(starts, totals, name, kind)))
    reps = 3
    with torch.inference_mode():
        model.image_encoder(image)
        totals.clear()
        start = time.perf_counter()
        for _ in range(reps):
            model.image_encoder(image)
        total = time.perf_counter() - start
    for hook in hooks:
        hook.remove()
    share = {k: round(100 * v / total, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
    share["other"] = round(100 - sum(share.values()), 1)
    print(f"  [{threads}T] FP32 encoder {1e3 * total / reps:.0f} ms; time share %: {share}", flush=True)
    return {"encoder_ms": round(1e3 * total / reps, 1), "share_percent": share}


# --------------------------------------------------------------------------------------------------
# accuracy (optional)


def mask_agreement(model, variants: dict, images: list[Path], masks_dir: Path | None) -> dict:
    """Dice / mean |prob diff| of each variant vs FP32: whole-image box, and per-lung boxes taken from
    the ground-truth masks. ``fp32_input_jitter``: FP32 itself with +-0.5 grey-level uniform noise on
    the input, i.e. how stable the FP32 mask is under noise below the 8-bit input's resolution."""
    import cv2
    import numpy as np
    import torch

    from core.segment.preprocess import letterbox_image, to_model_tensor

    def lung_boxes(path, box):
        mask_path = masks_dir / (path.stem + ".png") if masks_dir else None
        if mask_path is None or not mask_path.is_file():
            return []
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 127).astype(np.uint8))
        biggest = sorted(range(1, n), key=lambda i: -stats[i, 4])[:2]
        return [box.box_to_model([stats[i, 0], stats[i, 1], stats[i, 0] + stats[i, 2], stats[i, 1] + stats[i, 3]])
                for i in biggest]

    def probs(m, x, prompts):
        e = m.encode(x)
        return [torch.sigmoid(m.decode(e, boxes=torch.from_numpy(np.asarray(p, np.float32))[None])[0]) for p in prompts]

    keys = [k for k in variants if k != "fp32"] + ["fp32_input_jitter"]
    stats = {k: {"whole_image_box": [], "lung_box": []} for k in keys}
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for path in images:
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            padded, box = letterbox_image(gray, model.image_size)
            x = to_model_tensor(padded)
            prompts = [box.whole_image_box(), *lung_boxes(path, box)]
            reference = probs(model, x, prompts)
            outputs = {k: probs(variants[k], x, prompts) for k in keys if k in variants}
            outputs["fp32_input_jitter"] = probs(model, x + torch.rand(x.shape, generator=generator) - 0.5, prompts)
            for key, out in outputs.items():
                for i, (p, r) in enumerate(zip(out, reference)):
                    a, b = r > 0.5, p > 0.5
                    dice = float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1))
                    stats[key]["whole_image_box" if i == 0 else "lung_box"].append((dice, float((p - r).abs().mean())))
    summary = {}
    for key, kinds in stats.items():
        summary[key] = {}
        for kind, values in kinds.items():
            if not values:
                continue
            arr = np.array(values)
            summary[key][kind] = {
                "n": len(values), "dice_mean": round(float(arr[:, 0].mean()), 4),
                "dice_median": round(float(np.median(arr[:, 0])), 4), "dice_min": round(float(arr[:, 0].min()), 4),
                "dice_over_0.97_percent": round(float(100 * (arr[:, 0] > 0.97).mean()), 1),
                "mean_abs_prob_diff": round(float(arr[:, 1].mean()), 5),
            }
        print(f"  {key:18s} " + " | ".join(
            f"{kind}: Dice mean {s['dice_mean']:.4f} median {s['dice_median']:.4f} min {s['dice_min']:.3f} "
            f">0.97 {s['dice_over_0.97_percent']:.0f}% mean|dp| {s['mean_abs_prob_diff']:.4f}"
            for kind, s in summary[key].items()), flush=True)
    return summary


# --------------------------------------------------------------------------------------------------


def _data_dir() -> Path:
    env = os.environ.get("ADAQAT_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def run(args, parts: set[str]) -> dict:
    _quiet()
    import cv2
    import torch

    from core.models.int8 import POLICIES, has_int8_dot_product, quantize_linear_layers, select_engine
    from core.models.registry import build_backbone

    images = sorted((_data_dir() / "cxr-lungs" / "images").glob("*.jpg"))
    if not images:
        raise SystemExit(f"no chest X-rays under {_data_dir() / 'cxr-lungs' / 'images'}")
    gray = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE)
    model = build_backbone("lite_medsam", "pretrained")
    variants = _variants(model)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = {
        "machine": {
            "cpu": _cpu_name(), "torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability(),
            "isa_cap": args.isa_label or "native",
            "env": {k: os.environ[k] for k in sorted(set().union(*ISA_CAPS.values())) if k in os.environ},
            "int8_dot_product": has_int8_dot_product(), "engine_selected": select_engine(),
        },
    }
    print(f"engine selected by core.models.int8 here: {result['machine']['engine_selected']} "
          f"(int8 dot product: {result['machine']['int8_dot_product']})")
    threads = [int(t) for t in args.threads.split(",")]
    if "kernels" in parts:
        print("Linear kernels (ratio = FP32 time / INT8 time, median of per-round ratios):")
        rows = []
        for t in threads:
            rows += bench_kernels(model, gray, t, args.rounds)
        result["kernels"] = {"measured_at": stamp, "image": images[0].name, "rounds": args.rounds, "rows": rows,
                             "geomean_ratio_encoder_layers": _summary(rows)}
    if "model" in parts:
        print("FP32 encoder profile:")
        result["encoder_profile"] = {"measured_at": stamp}
        for t in threads:
            result["encoder_profile"][f"{t}_threads"] = encoder_profile(model, gray, t)
        print("Whole model (speedup vs FP32 in the same run):")
        result["model"] = {"measured_at": stamp, "rounds": args.model_rounds}
        for t in threads:
            result["model"][f"{t}_threads"] = bench_model(model, gray, t, args.model_rounds, variants)
    if "accuracy" in parts:
        print(f"Mask agreement with FP32 on {args.accuracy} images:")
        torch.set_num_threads(max(threads))
        chosen = {k: v for k, v in variants.items() if k in ("fp32", "fp32_bnfold", "int8_paper", "int8_merged")}
        # what a CPU without VNNI gets: fbgemm with 7-bit activations
        chosen["int8_merged_fbgemm_7bit"] = quantize_linear_layers(
            copy.deepcopy(variants["fp32_bnfold"]), POLICIES["merged"], engine="fbgemm")
        result["accuracy"] = {"measured_at": stamp, **mask_agreement(
            model, chosen, images[: args.accuracy], _data_dir() / "cxr-lungs" / "masks")}
    return result


def _merge(previous: dict, new: dict) -> dict:
    """Sections run now replace those of the previous file; the others are kept."""
    merged = dict(previous)
    for key, value in new.items():
        if key == "emulated":
            merged["emulated"] = {label: _merge(previous.get("emulated", {}).get(label, {}), child)
                                  for label, child in {**previous.get("emulated", {}), **value}.items()}
        else:
            merged[key] = value
    return merged


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _summary(rows: list[dict]) -> dict:
    """Per route and thread count: geometric-mean ratio over the encoder layers."""
    import math

    out = {}
    for row in rows:
        if not row["layer"].startswith("L"):
            continue
        key = f"{row['route']}@{row['threads']}T"
        out.setdefault(key, []).append(row["ratio"])
    return {k: round(math.exp(sum(map(math.log, v)) / len(v)), 3) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--parts", default="kernels,model",
                        help="comma list of kernels, model, accuracy; sections not run are kept from --out")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per kernel")
    parser.add_argument("--model-rounds", type=int, default=7, help="interleaved rounds for the whole model")
    parser.add_argument("--accuracy", type=int, default=0, help="mask agreement on the first N images (adds the part)")
    parser.add_argument("--emulate", choices=sorted(ISA_CAPS), action="append", default=[],
                        help="also rerun kernels/model in a subprocess with the ISA capped (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int8_kernels.json"))
    parser.add_argument("--emulated-only", action="store_true", help="skip the native run (with --emulate)")
    parser.add_argument("--isa-label", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.accuracy:
        parts.add("accuracy")
    elif "accuracy" in parts:
        args.accuracy = 30

    result = {} if args.emulated_only and not args.isa_label else run(args, parts)
    if args.isa_label:  # child of --emulate: hand the result back on stdout
        print("@@RESULT@@" + json.dumps(result))
        return
    child_parts = ",".join(sorted(parts - {"accuracy"}))
    for label in args.emulate if child_parts else []:
        print(f"\n=== rerun with ISA capped at {label} ({ISA_CAPS[label]}) ===", flush=True)
        cmd = [sys.executable, __file__, "--threads", args.threads, "--rounds", str(args.rounds),
               "--model-rounds", str(args.model_rounds), "--parts", child_parts, "--isa-label", label]
        proc = subprocess.run(cmd, env={**os.environ, **ISA_CAPS[label]}, capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith("@@RESULT@@"):
                result.setdefault("emulated", {})[label] = json.loads(line[len("@@RESULT@@"):])
            else:
                print(line)
        if proc.returncode:
            print(proc.stderr[-2000:])
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    merged = _merge(previous, result)
    print("\nGeometric-mean INT8/FP32 speed ratio over the 12 encoder layers:")
    for label, child in [("native", merged), *merged.get("emulated", {}).items()]:
        for key, value in child.get("kernels", {}).get("geomean_ratio_encoder_layers", {}).items():
            print(f"  {label:9s} {key:22s} {value:.2f}x")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merged, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
