"""Speed of the whole segmentation pipeline on one GPU (issue 14): images/s, inference and training.

Inference, per batch: uint8 grey images at the source size (1024 x 1024, a chest X-ray as decoded)
-> GPU -> resize to the model's input -> normalise -> image encoder -> prompt encoder (whole-image
box, the automatic mode) -> mask decoder -> logits upsampled to the source size -> threshold -> mask
back on the host. JPEG/DICOM decoding (a CPU job) is not in it. Training: the trainer's own step
(``core.training.step.training_step``: BCE + Dice, AdaLoRA orthogonality penalty, backward, AdamW,
``update_and_allocate``) with the ``everywhere`` policy, on batches already on the GPU (the data
loader runs on CPU workers alongside).

Backbones: LiteMedSAM at 256 px (pretrained weights if ``--checkpoint`` is given, else random: speed
does not depend on them) and SAM ViT-B at 512 and 1024 px, random weights (segment-anything's
ImageEncoderViT / PromptEncoder / MaskDecoder, built as ``core.models.sam_vit`` builds them; no
checkpoint). Inputs are random (speed only). The card's name (``torch.cuda.get_device_name``) is
recorded with every number.

    python benchmarks/bench_gpu_speed.py --json-out gpu_speed.json [--checkpoint lite_medsam.pth]

Two CPU-only scaling measurements live here too (the report's other speed curves; no GPU needed):

    # inference latency vs image size: the shipped model through the product's Predictor (letterbox,
    # encoder, decoder, upsampling to the source size, lung-shape clean-up) on one chest X-ray resized to
    # each source size; and SAM ViT-B (random weights) vs its model input size
    python benchmarks/bench_gpu_speed.py --cpu-image-sizes --json-out benchmarks/results/cpu_latency_vs_size.json
    # training time vs number of training images: the CPU fine-tune a clinic runs (`adaqat train --from
    # default`, decoder profile) on the first N clinic-sample train images, fixed epochs, wall clock
    python benchmarks/bench_gpu_speed.py --cpu-train-images 4 8 16 --json-out benchmarks/results/cpu_train_vs_images.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = [  # backbone, model input px, inference batch sizes, training batch size
    ("lite_medsam", 256, (1, 16, 64), 16),
    ("sam_vit_b", 512, (1, 16), 8),
    ("sam_vit_b", 1024, (1, 8), 4),
]
SOURCE_PX = 1024


def build(backbone: str, size: int, checkpoint: str | None):
    from core.models.registry import build_backbone, default_config

    if backbone == "lite_medsam":
        return build_backbone("lite_medsam", checkpoint or None)
    return build_backbone(backbone, None, default_config(backbone, size))


def timed(fn, sync, min_seconds: float, warmup: int = 3) -> tuple[float, int]:
    for _ in range(warmup):
        fn()
    sync()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and n >= 3:
            return elapsed / n, n


def inference_fn(model, batch: int, device: str, amp: bool):
    import torch
    import torch.nn.functional as F

    size = model.image_size
    host = torch.randint(0, 256, (batch, 1, SOURCE_PX, SOURCE_PX), dtype=torch.uint8)
    host = host.pin_memory() if device.startswith("cuda") else host
    box = torch.tensor([[0.0, 0.0, size - 1.0, size - 1.0]], device=device).expand(batch, 4).contiguous()

    @torch.inference_mode()
    def run():
        images = host.to(device, non_blocking=True).float()
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = model(images, box)
        logits = F.interpolate(logits.float(), size=(SOURCE_PX, SOURCE_PX), mode="bilinear", align_corners=False)
        return (logits > 0).to(torch.uint8).cpu()

    return run


def training_fn(model, batch: int, device: str):
    import torch

    from core.training.adapters import (AdapterConfig, add_adapters, adapter_parameters, base_trainable_parameters,
                                        orthogonality_penalty)
    from core.training.step import training_step

    wrapped = add_adapters(model, AdapterConfig(policy="everywhere"), total_steps=10_000)
    model.to(device).train()
    optimizer = torch.optim.AdamW([{"params": adapter_parameters(model), "lr": 2e-3},
                                   {"params": base_trainable_parameters(model), "lr": 2e-4}])
    size = model.image_size
    g = torch.Generator().manual_seed(0)
    data = {"image": torch.randint(0, 256, (batch, 1, size, size), generator=g).float(),
            "target": (torch.rand(batch, 1, size, size, generator=g) > 0.5).float(),
            "valid": torch.ones(batch, 1, size, size),
            "box": torch.tensor([[8.0, 8.0, size - 9.0, size - 9.0]]).expand(batch, 4).contiguous()}
    data = {k: v.to(device) for k, v in data.items()}
    state = {"step": 0}

    def after():
        state["step"] += 1
        wrapped.update_and_allocate(state["step"])

    def run():
        training_step(model, optimizer, data, device=device, amp=True, extra_loss=lambda: 0.1 * orthogonality_penalty(model),
                      grad_clip=1.0, after_step=after)

    return run


DATA = Path(__import__("os").environ.get("ADAQAT_SHARED_DATA", ROOT.parent / "shared" / "data"))
SAMPLE = "006ce2a73b.jpg"  # the image of bench_int8_kernels.py


def machine_cpu() -> dict:
    import os

    import torch

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "load_average_at_start": os.getloadavg()}


def cpu_image_sizes(threads: int, repeats: int) -> dict:
    import cv2
    import torch
    import torch.nn.functional as F

    from core.models.loading import load_model
    from core.segment.predictor import Predictor

    torch.set_num_threads(threads)
    machine = machine_cpu()
    gray = cv2.imread(str(DATA / "cxr-lungs" / "images" / SAMPLE), cv2.IMREAD_GRAYSCALE)
    loaded = load_model("default")
    predictor = Predictor(loaded)
    rows = []
    for size in (256, 512, 1024, 2048, 3072, 4096):
        image = cv2.resize(gray, (size, size), interpolation=cv2.INTER_CUBIC)
        times = []
        for _ in range(repeats + 1):  # the first is a warm-up
            t0 = time.perf_counter()
            predictor.set_image(image)
            t1 = time.perf_counter()
            predictor.predict()
            times.append((t1 - t0, time.perf_counter() - t1))
        enc = sorted(t[0] for t in times[1:])[len(times[1:]) // 2]
        dec = sorted(t[1] for t in times[1:])[len(times[1:]) // 2]
        rows.append({"model": f"shipped {loaded.info.name} ({loaded.info.precision}, {getattr(loaded, 'runtime', 'auto')} runtime)",
                     "what": "source image size", "px": size, "set_image_ms": round(enc * 1e3, 1),
                     "predict_ms": round(dec * 1e3, 1), "end_to_end_ms": round((enc + dec) * 1e3, 1)})
        print(rows[-1], flush=True)
    from core.models.registry import build_backbone, default_config

    for size in (256, 512, 768, 1024):
        model = build_backbone("sam_vit_b", None, default_config("sam_vit_b", size)).eval()
        x = torch.rand(1, 1, size, size) * 255
        box = torch.tensor([[0.0, 0.0, size - 1.0, size - 1.0]])
        times = []
        with torch.inference_mode():
            for _ in range(repeats + 1):
                t0 = time.perf_counter()
                emb = model.encode(x)
                t1 = time.perf_counter()
                logits, _ = model.decode(emb, boxes=box)
                (F.interpolate(logits, size=(size, size), mode="bilinear") > 0).numpy()
                times.append((t1 - t0, time.perf_counter() - t1))
        enc = sorted(t[0] for t in times[1:])[len(times[1:]) // 2]
        dec = sorted(t[1] for t in times[1:])[len(times[1:]) // 2]
        rows.append({"model": "SAM ViT-B, random weights (FP32 torch)", "what": "model input size", "px": size,
                     "set_image_ms": round(enc * 1e3, 1), "predict_ms": round(dec * 1e3, 1), "end_to_end_ms": round((enc + dec) * 1e3, 1)})
        print(rows[-1], flush=True)
        del model
    machine["load_average_at_end"] = __import__("os").getloadavg()
    return {"what": "CPU inference latency vs image size, median of the repeats after one warm-up",
            "data": f"cxr-lungs {SAMPLE} resized (bicubic) to each source size (shipped model); random input (SAM ViT-B)",
            "prompt": "auto (whole-image box)", "machine": machine, "repeats": repeats,
            "command": f"python benchmarks/bench_gpu_speed.py --cpu-image-sizes --threads {threads} --repeats {repeats}",
            "rows": rows}


def cpu_train_images(counts: list[int], epochs: int, threads: int, json_out: Path | None = None) -> dict:
    import os
    import subprocess
    import tempfile

    machine = {**machine_cpu(), "threads": threads}  # the runs' OMP_NUM_THREADS
    manifest = DATA / "clinic-sample" / "manifest.csv"
    rows = []

    def result() -> dict:
        return {"what": "wall clock of the CPU fine-tune (decoder profile) vs number of training images",
                "data": "clinic-sample train split, first N images (adaqat train --max-train-images N)",
                "model": "shipped default continued (--from default --profile decoder)", "prompt": "auto + box mix (training)",
                "epochs": epochs, "qat_epochs": 1, "machine": {**machine, "load_average_at_end": os.getloadavg()},
                "command": f"python benchmarks/bench_gpu_speed.py --cpu-train-images {' '.join(map(str, counts))} --epochs {epochs} "
                           f"--threads {threads}",
                "rows": rows}

    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "core.cli", "train", "--data", str(manifest), "--out", tmp, "--from", "default",
                       "--profile", "decoder", "--max-train-images", str(n), "--epochs", str(epochs), "--qat-epochs", "1"]
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            t0 = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            row = {"train_images_requested": n, "wall_s": round(wall, 1), "exit": done.returncode,
                   "load_average_after": [round(x, 2) for x in os.getloadavg()]}
            cards = sorted(Path(tmp).rglob("model.json"))
            if cards:
                card = json.loads(cards[-1].read_text())
                training = card.get("training", {})
                row.update({"views": training.get("train_views"), "train_images": training.get("train_images"),
                            "selection_images": training.get("selection_images"), "heldout_images": training.get("heldout_images"),
                            "run_seconds": training.get("seconds"), "stage1_seconds": card.get("stage1", {}).get("seconds"),
                            "qat_seconds": card.get("qat", {}).get("seconds")})
            if done.returncode != 0:
                row["stderr_tail"] = done.stderr[-400:]
        rows.append(row)
        print(row, flush=True)
        if json_out:  # after every row: a stopped sweep keeps what it measured
            json_out.write_text(json.dumps(result(), indent=1))
    return result()


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--checkpoint", default=None, help="LiteMedSAM weights (default: random, speed only)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement (at least)")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="LiteMedSAM only, batch 1, no warm-up (a check, not a figure)")
    parser.add_argument("--cpu-image-sizes", action="store_true", help="CPU: latency vs image size (no GPU)")
    parser.add_argument("--cpu-train-images", type=int, nargs="+", default=None, metavar="N",
                        help="CPU: fine-tune wall clock for each number of training images (no GPU)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="--cpu-train-images: stage-1 epochs")
    args = parser.parse_args(argv)
    if args.cpu_image_sizes or args.cpu_train_images:
        result = cpu_image_sizes(args.threads, args.repeats) if args.cpu_image_sizes else \
            cpu_train_images(args.cpu_train_images, args.epochs, args.threads, args.json_out)
        if args.json_out:
            args.json_out.write_text(json.dumps(result, indent=1))
        return 0
    configs = [("lite_medsam", 256, (1,), 2)] if args.smoke else CONFIGS
    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    card = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    rows = []
    for backbone, size, batches, train_batch in configs:
        model = build(backbone, size, args.checkpoint).to(device).eval()
        for batch in batches:
            for amp in (False, True) if device.startswith("cuda") else (False,):
                seconds, n = timed(inference_fn(model, batch, device, amp), sync, args.seconds)
                rows.append({"backbone": backbone, "input_px": size, "mode": "inference", "precision": "bf16 autocast" if amp else "fp32 (tf32)",
                             "batch": batch, "ms_per_batch": round(seconds * 1e3, 2), "images_per_s": round(batch / seconds, 1),
                             "iterations": n, "gpu": card})
                print(rows[-1], flush=True)
        torch.cuda.reset_peak_memory_stats() if device.startswith("cuda") else None
        seconds, n = timed(training_fn(build(backbone, size, args.checkpoint), train_batch, device), sync, args.seconds)
        rows.append({"backbone": backbone, "input_px": size, "mode": "training step (everywhere)", "precision": "bf16 autocast",
                     "batch": train_batch, "ms_per_batch": round(seconds * 1e3, 2), "images_per_s": round(train_batch / seconds, 1),
                     "iterations": n, "gpu": card,
                     "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.startswith("cuda") else None})
        print(rows[-1], flush=True)
        del model
        torch.cuda.empty_cache() if device.startswith("cuda") else None
    from core.evaluation.report import format_table

    print(format_table(rows, ["backbone", "input_px", "mode", "precision", "batch", "ms_per_batch", "images_per_s", "gpu"]))
    result = {"what": "images/s of the segmentation pipeline on one GPU (see the script's docstring)",
              "data": f"random uint8 images at {SOURCE_PX} x {SOURCE_PX} (speed only)", "prompt": "auto (whole-image box)",
              "machine": {"gpu": card, "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()},
              "command": "python benchmarks/bench_gpu_speed.py --json-out gpu_speed.json", "rows": rows}
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
