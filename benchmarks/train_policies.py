"""Stage-1 comparison: adapter policies and baselines, same data, same budget.

Trains each policy on the train split (model selection on val), then scores the test split at the
model's input resolution (256 px for LiteMedSAM, the protocol of the reference figures) in automatic
and box-prompt mode. Prints a table and writes JSON. Full runs belong on a GPU:

    python benchmarks/train_policies.py --data cache.npz --out runs/policies --device cuda --epochs 40

Each policy runs in its own process so several share one GPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUNS = {
    "decoder_only": ["--policy", "decoder_only"],
    "full": ["--policy", "full", "--lr-base", "1e-4"],
    "paper": ["--policy", "paper"],
    "everywhere": ["--policy", "everywhere"],
    "everywhere_lr5e-3": ["--policy", "everywhere", "--lr-adapter", "5e-3"],
    # ablation of `everywhere` (issue 14): same modules, fixed rank, no allocation. r 12 = AdaLoRA's init_r, so the
    # trainable parameters are exactly everywhere's; r 8 = AdaLoRA's final average budget (target_r)
    "lora": ["--policy", "lora", "--init-r", "12"],
    "lora_r8": ["--policy", "lora", "--init-r", "8"],
}
EXTRA_RUNS = ("everywhere_lr5e-3", "lora", "lora_r8")  # not run unless --runs names them


def test_dice(model_dir: Path, cache: Path, device: str, limit: int | None = None) -> dict:
    """Mean test Dice per prompt mode at model resolution (the loop's own validation)."""
    return {prompt: float(sum(d) / len(d)) for prompt, d in per_image_test_dice(model_dir, cache, device, limit).items()}


def per_image_test_dice(model_dir: Path, cache: Path, device: str, limit: int | None = None) -> dict:
    """Test Dice of every image, auto and box prompt, exactly as ``TrainingLoop.validate`` scores
    (model resolution, ignore label left out; bf16 autocast on CUDA), in the cache's order."""
    import torch
    from torch.utils.data import DataLoader

    from core.models.loading import load_model_dir
    from core.training.dataset import SegmentationDataset
    from core.training.example_cache import load_example_cache
    from core.training.losses import batch_dice
    from core.training.loop import _collate

    examples = load_example_cache(cache)["test"][:limit]
    model = load_model_dir(model_dir).module.to(device).eval()
    prompts = ("auto", "box")
    sets = {prompt: SegmentationDataset(examples, train=False, eval_prompt=prompt) for prompt in prompts}
    scores = {prompt: [] for prompt in prompts}
    amp = str(device).startswith("cuda")
    with torch.no_grad():  # model(image, box) is decode(encode(image), box): encode once, decode per prompt
        loaders = [DataLoader(sets[prompt], batch_size=16, shuffle=False, collate_fn=_collate) for prompt in prompts]
        for batches in zip(*loaders):
            batches = [{k: v.to(device) for k, v in batch.items()} for batch in batches]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                embeddings = model.encode(batches[0]["image"])
                for prompt, batch in zip(prompts, batches):
                    logits, _ = model.decode(embeddings, boxes=batch["box"])
                    scores[prompt] += batch_dice(logits, batch["target"], batch["valid"]).float().cpu().tolist()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--checkpoint", default=None, help="base weights file (default: the bundled LiteMedSAM)")
    parser.add_argument("--runs", nargs="*", default=[name for name in RUNS if name not in EXTRA_RUNS])
    parser.add_argument("--log-dir", type=Path, default=None, help="where each run's log goes (default: --out)")
    parser.add_argument("--max-test-images", type=int, default=None, help="smoke tests only")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="extra args for every adaqat train")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    processes, started = {}, time.time()
    for name in args.runs:
        command = [sys.executable, "-m", "core.cli", "train", "--data", str(args.data), "--out", str(args.out / name),
                   "--from", "lite_medsam", "--stages", "1", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--device", args.device, "--workers", "3", "--name", f"policy-{name}", *RUNS[name], *args.extra]
        if args.checkpoint:
            command += ["--checkpoint", args.checkpoint]
        log = ((args.log_dir or args.out) / f"{name}.log").open("w")
        processes[name] = (subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), time.time())
    rows = []
    for name, (process, t0) in processes.items():
        code = process.wait()
        if code != 0:
            rows.append({"policy": name, "error": f"exit {code}, see {name}.log"})
            continue
        card = json.loads((args.out / name / "model-fp32" / "model.json").read_text())
        per_image = per_image_test_dice(args.out / name / "model-fp32", args.data, args.device, args.max_test_images)
        scores = {prompt: sum(d) / len(d) for prompt, d in per_image.items()}
        rows.append({
            "policy": name,
            "trainable": card["parameters"]["trainable"],
            "full": card["parameters"]["full_finetune"],
            "reduction": card["parameters"]["reduction_vs_full"],
            "best_epoch": card["training"]["best_epoch"],
            "val_dice_auto": round(card["metrics"]["val_dice_auto_model_resolution"], 4),
            "test_dice_auto": round(scores["auto"], 4),
            "test_dice_box": round(scores["box"], 4),
            "train_seconds": card["training"]["seconds"],
            "total_rank": card["adapter"].get("final_total_rank"),
            "test_dice_per_image": {prompt: [round(v, 5) for v in d] for prompt, d in per_image.items()},
        })
    from core.evaluation.report import format_table

    columns = [k for k in rows[0] if k != "test_dice_per_image"] if rows and "error" not in rows[0] else ["policy", "error"]
    print(format_table(rows, columns))
    (args.out / "policies.json").write_text(json.dumps({"rows": rows, "epochs": args.epochs, "batch_size": args.batch_size,
                                                        "wall_seconds": round(time.time() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
