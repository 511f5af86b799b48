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
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--checkpoint", default=None, help="LiteMedSAM weights (default: random, speed only)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement (at least)")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help="LiteMedSAM only, batch 1, no warm-up (a check, not a figure)")
    args = parser.parse_args(argv)
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
