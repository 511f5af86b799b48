"""Image-encoder speed and error per runtime on *this* CPU, with its int8 instruction set named.

    python benchmarks/bench_encoder_isa.py --threads 1 2 --inputs .devdata/val4_inputs.npy

Why: the int8 GEMM's speed and its 8-bit saturation depend on the CPU. Without an int8 dot-product
instruction (AVX2, AVX-512F: ``vpmaddubsw``) u8 x s8 pairs saturate int16, so the shipped graphs use
7-bit activations; with VNNI (``vpdpbusd``) 8 bits are exact and the kernel is ~2x faster. This runs
the same model on the CPU at hand so the two kinds of machine can be compared with one command
(here, and on the lent device's CPU: ``tools/device_encoder_isa.sh``).

Routes, interleaved per round on the same preprocessed chest X-ray: ``torch_fp32`` = the model's
exact float twin in torch eager (the reference), ``torch_int8`` = the torch dynamic INT8 route,
``ort_fp32`` = the twin exported to ONNX, ``ort_int8_a7`` = the shipped graph (7-bit activations),
``ort_int8_a8`` = the same graph rewritten to 8-bit activations (ONNX Runtime's DynamicQuantizeLinear),
as the loader runs it on VNNI/AMX CPUs (``core/models/onnx_activations.py``).
Error: relative L2 of the embedding against the torch FP32 twin, mean over the inputs.

``--profile`` adds ONNX Runtime's per-node profile of each ORT route: milliseconds per op type, and the
*floor*: the ratio to torch FP32 the route would reach if every convolution and matrix product
(float or int8) cost nothing, i.e. what no quantisation of those ops can beat.
Writes ``benchmarks/results/encoder_isa_<cpu>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_description() -> dict:
    """Model name and the int8-relevant ISA flags from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": []}
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = set((re.search(r"^flags\s*:\s*(.+)$", text, re.M) or ["", ""])[1].split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "avx512_bf16")
    return {"model": model.group(1).strip() if model else platform.machine(), "flags": [f for f in wanted if f in flags]}


def build_graphs(model_dir: Path, work: Path, baseline: Path | None = None) -> tuple[object, object, dict[str, tuple[Path, int]]]:
    """(torch INT8 module, its float twin, {route: (encoder graph, activation bits)}) for ``model_dir``.

    ``baseline``: another folder holding the same model's graphs as exported before (e.g. the last
    release), run as ``baseline_a7``, to measure an export change in the same interleaved rounds.
    """
    import torch

    from core.models.card import read_model_card
    from core.models.loading import load_model_dir
    from core.models.onnx_export import _to_bytes
    from core.models.onnx_form import verified_graph_paths
    from core.training.parent import dequantised_copy

    int8 = load_model_dir(model_dir, runtime="torch").module.eval()
    twin = dequantised_copy(int8).float().eval()
    image = torch.zeros(1, 3, int8.image_size, int8.image_size)
    work.mkdir(parents=True, exist_ok=True)
    fp32 = work / "encoder_fp32.onnx"
    fp32.write_bytes(_to_bytes(twin.image_encoder, (image,), ["image"], ["embedding"]))
    shipped = verified_graph_paths(model_dir, read_model_card(model_dir))["encoder"]
    # bits 8: the loader's own in-memory rewrite, as VNNI/AMX CPUs run it (a float graph has nothing to rewrite)
    graphs = {"ort_fp32": (fp32, 7), "ort_int8_a7": (shipped, 7), "ort_int8_a8": (shipped, 8)}
    if baseline is not None:
        graphs["baseline_a7"] = (verified_graph_paths(baseline, read_model_card(baseline))["encoder"], 7)
    return int8, twin, graphs


def measure(int8, twin, graphs: dict[str, tuple[Path, int]], inputs, threads: int, rounds: int) -> dict:
    import numpy as np
    import torch

    from core.models.onnx_runtime import _session

    torch.set_num_threads(threads)
    runners = {"torch_fp32": lambda x: twin.image_encoder(torch.from_numpy(x)).numpy(),
               "torch_int8": lambda x: int8.image_encoder(torch.from_numpy(x)).numpy()}
    for name, (path, bits) in graphs.items():
        session = _session(path, path.read_bytes(), threads, bits)  # the product's session options
        runners[name] = lambda x, session=session: session.run(None, {"image": x})[0]
    times = {name: [] for name in runners}
    errors = {name: [] for name in runners}
    with torch.inference_mode():
        for index in range(len(inputs)):
            x = inputs[index : index + 1]
            outputs = {name: run(x) for name, run in runners.items()}  # warm-up and error, not timed
            for name, out in outputs.items():
                errors[name].append(float(np.linalg.norm(out - outputs["torch_fp32"]) / np.linalg.norm(outputs["torch_fp32"])))
        for round_ in range(rounds):
            x = inputs[round_ % len(inputs)][None]
            for name, run in runners.items():
                start = time.perf_counter()
                run(x)
                times[name].append(time.perf_counter() - start)
    rows = {}
    for name in runners:
        ratios = [a / b for a, b in zip(times[name], times["torch_fp32"])]
        rows[name] = {"encoder_ms": round(1000 * statistics.median(times[name]), 1),
                      "ratio_to_torch_fp32": round(statistics.median(ratios), 3),
                      "ratio_to_ort_fp32": round(statistics.median(a / b for a, b in zip(times[name], times["ort_fp32"])), 3),
                      "embedding_rel_error": round(statistics.mean(errors[name]), 4)}
    if "baseline_a7" in times:  # the same 7-bit model, this export against the earlier one
        rows["ort_int8_a7"]["ratio_to_baseline_a7"] = round(statistics.median(
            a / b for a, b in zip(times["ort_int8_a7"], times["baseline_a7"])), 3)
    return rows


#: op types that INT8 kernels can replace (or already did): convolutions and matrix products
GEMM_LIKE = ("Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcQLinearConv", "MatMul", "FusedMatMul",
             "Gemm", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QGemm", "QLinearMatMul")


def op_profile(path: Path, bits: int, threads: int, x, runs: int, work: Path) -> dict:
    """{op type: ms per run} from ONNX Runtime's profiler, the warm-up runs left out."""
    import collections

    from core.models.onnx_runtime import _session

    session = _session(path, path.read_bytes(), threads, bits, profile_prefix=str(work / f"profile_{path.stem}_{bits}"))
    warm_up = 2
    for _ in range(warm_up + runs):
        session.run(None, {"image": x})
    events = json.loads(Path(session.end_profiling()).read_text())
    starts = [e["ts"] for e in events if e.get("name") == "model_run"]
    first_timed = sorted(starts)[warm_up]
    per_op = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= first_timed:
            per_op[e["args"]["op_name"]] += e["dur"] / 1000 / runs
    return dict(per_op.most_common())


def profile_rows(graphs: dict[str, tuple[Path, int]], rows: dict, inputs, threads: int, work: Path) -> dict:
    """Per ORT route: ms per op type, the GEMM-like share, and the floor ratio if those ops were free."""
    out = {}
    for name, (path, bits) in graphs.items():
        per_op = op_profile(path, bits, threads, inputs[:1], runs=3, work=work)
        total = sum(per_op.values())
        gemm = sum(ms for op, ms in per_op.items() if op in GEMM_LIKE)
        out[name] = {"op_ms": {op: round(ms, 1) for op, ms in per_op.items()},
                     "gemm_like_share": round(gemm / total, 3),
                     "floor_ratio_if_gemm_like_free": round(rows[name]["ratio_to_torch_fp32"] * (1 - gemm / total), 3)}
    return out


def print_profile(profile: dict) -> None:
    names = list(profile)
    ops = sorted({op for p in profile.values() for op in p["op_ms"]},
                 key=lambda op: -max(p["op_ms"].get(op, 0) for p in profile.values()))[:14]
    print("\nONNX Runtime profile, ms per run by op type (kernel time)")
    print(f"{'op type':22}" + "".join(f"{n:>13}" for n in names))
    for op in ops:
        print(f"{op:22}" + "".join(f"{profile[n]['op_ms'].get(op, 0):13.1f}" for n in names))
    print(f"{'GEMM-like share':22}" + "".join(f"{profile[n]['gemm_like_share']:13.3f}" for n in names))
    print(f"{'floor vs torch fp32':22}" + "".join(f"{profile[n]['floor_ratio_if_gemm_like_free']:13.3f}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "resources" / "models" / "default"))
    parser.add_argument("--inputs", default=str(ROOT / ".devdata" / "val4_inputs.npy"),
                        help="float32 N x 3 x S x S normalised encoder inputs (make with --make-inputs)")
    parser.add_argument("--make-inputs", action="store_true", help="write --inputs from 4 cxr-lungs val images and exit")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--work", default="/tmp/adaqat-encoder-isa")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--profile", action="store_true", help="add the per-op-type profile and the floor ratio")
    parser.add_argument("--baseline-model", default=None,
                        help="a folder with the same model's earlier ONNX export, timed as route baseline_a7")
    args = parser.parse_args()
    import numpy as np

    if args.make_inputs:
        write_inputs(Path(args.model), Path(args.inputs))
        return
    inputs = np.load(args.inputs)
    cpu = cpu_description()
    int8, twin, graphs = build_graphs(Path(args.model), Path(args.work),
                                      Path(args.baseline_model) if args.baseline_model else None)
    report = {"cpu": cpu, "model": Path(args.model).name, "inputs": len(inputs), "rounds": args.rounds,
              "baseline_model": args.baseline_model,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threads": {}}
    print(f"CPU: {cpu['model']}; int8-relevant flags: {', '.join(cpu['flags']) or 'none'}")
    for threads in args.threads:
        rows = measure(int8, twin, graphs, inputs, threads, args.rounds)
        report["threads"][str(threads)] = rows
        print(f"\n{threads} thread(s), encoder, {len(inputs)} cxr-lungs val inputs, {args.rounds} interleaved rounds")
        print(f"{'route':14} {'ms':>8} {'vs torch fp32':>13} {'vs ort fp32':>11} {'rel. error':>10}")
        for name, r in rows.items():
            print(f"{name:14} {r['encoder_ms']:8.1f} {r['ratio_to_torch_fp32']:13.3f} {r['ratio_to_ort_fp32']:11.3f} "
                  f"{r['embedding_rel_error']:10.4f}")
        if "ratio_to_baseline_a7" in rows["ort_int8_a7"]:
            print(f"ort_int8_a7 / baseline_a7 (this export vs {args.baseline_model}): {rows['ort_int8_a7']['ratio_to_baseline_a7']:.3f}")
        if args.profile:
            rows["profile"] = profile_rows(graphs, rows, inputs, threads, Path(args.work))
            print_profile(rows["profile"])
    slug = re.sub(r"[^a-z0-9]+", "-", cpu["model"].lower()).strip("-")[:40] or "cpu"
    out = Path(args.json_out or ROOT / "benchmarks" / "results" / f"encoder_isa_{slug}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {out}")


def write_inputs(model_dir: Path, out: Path) -> None:
    """Four cxr-lungs val images, preprocessed as the predictor does (letterbox, normalise)."""
    import csv
    import os

    import numpy as np

    from core.io.loader import load_study
    from core.io.model_input import model_gray
    from core.models.loading import load_model_dir
    from core.segment.preprocess import letterbox_image, to_model_tensor

    data = Path(os.environ.get("ADAQAT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cxr-lungs"
    rows = [r for r in csv.DictReader(open(data / "manifest.csv", encoding="utf-8")) if r["split"] == "val"][:4]
    model = load_model_dir(model_dir, runtime="torch").module
    size = model.image_size
    arrays = [model.normalize(to_model_tensor(letterbox_image(model_gray(load_study(data / r["image"])), size)[0])).numpy()
              for r in rows]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.concatenate(arrays).astype(np.float32))
    print(f"wrote {out} ({len(arrays)} inputs)")


if __name__ == "__main__":
    main()
