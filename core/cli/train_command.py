"""``adaqat train`` (stage 1, stage 2 or both) and ``adaqat prepare`` (decode data once into a cache)."""

from __future__ import annotations

import errno
import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from ..models.errors import ModelLoadError
from ..models.registry import BACKBONES, DEFAULT_BACKBONE, default_config
from ..compute import choose_device, set_threads
from ..training import distributed
from ..training.adapters import POLICIES
from ..training.exit_codes import EXIT_CANCELLED, EXIT_DIVERGED, EXIT_OUT_OF_MEMORY
from ..io.manifest import ManifestError
from ..training.config import (CONTINUING_PROFILES, INT8_DIR, PROFILE_LEARNING_RATES, PROFILES, AdapterConfig,
                               Stage1Config, TrainConfig, apply_profile_defaults, resolve_profile)
from ..training.pipeline import train
from ..training.progress import ProgressEvent, TrainingCancelled, TrainingDiverged, TrainingOutOfMemory
from .common import add_runtime_options, fail, progress_line_open, say

QAT_POLICIES = ("paper", "merged")


def add_parser(sub) -> None:
    parser = sub.add_parser("train", help="fine-tune: stage 1 AdaLoRA, stage 2 INT8 QAT")
    parser.add_argument("--data", required=True, help="manifest CSV, an example cache from 'adaqat prepare', or the viewer's annotation store folder")
    parser.add_argument("--out", required=True, type=Path, help="output folder (model-fp32/, model-int8/, checkpoints)")
    parser.add_argument("--from", dest="from_model", default=None, metavar="NAME_OR_PATH",
                        help="the model to continue (default: the active model, the shipped one on a fresh "
                             "install); a backbone name (lite_medsam) trains from its base weights")
    parser.add_argument("--profile", choices=PROFILES, default="auto",
                        help="tail: continue a model, training its last encoder block, neck and mask decoder over "
                             "cached encoder features; decoder: the mask decoder alone over cached embeddings (fastest); "
                             "full: AdaLoRA on encoder and decoder from base weights; auto: tail when continuing "
                             "a LiteMedSAM model, decoder for other backbones, full from base weights")
    parser.add_argument("--estimate", action="store_true",
                        help="measure this machine, print the run's plan and estimated duration as JSON, and stop")
    parser.add_argument("--activate-if-better", action="store_true",
                        help="make the new model the active one when it beats the active model on the held-out images")
    parser.add_argument("--backbone", choices=BACKBONES, default=DEFAULT_BACKBONE)
    parser.add_argument("--checkpoint", default=None, help="base weights file (required for real SAM ViT weights)")
    parser.add_argument("--image-size", type=int, default=None, help="input size for SAM ViT backbones (e.g. 512)")
    parser.add_argument("--epochs", type=int, default=40, help="epochs (the most, with --time-budget)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="finish the whole run in about this long (decoder profile: preparation, both stages, "
                             "export and comparison; full profile: stage 1 only)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"images per step (default {TrainConfig.batch_size}; tail profile 4, to stay within 4 GiB)")
    parser.add_argument("--stages", choices=("1", "2", "both"), default="both")
    parser.add_argument("--resume", action="store_true", help="continue from the last epoch checkpoint in --out")
    parser.add_argument("--policy", choices=POLICIES, default="everywhere", help="adapter policy (stage 1)")
    parser.add_argument("--init-r", type=int, default=AdapterConfig.init_r)
    parser.add_argument("--target-r", type=int, default=AdapterConfig.target_r)
    parser.add_argument("--lr-adapter", type=float, default=None,
                        help=f"stage-1 adapter learning rate (default {Stage1Config.lr_adapter:g}; continuing: "
                             + ", ".join(f"{k} {v[0]:g}" for k, v in PROFILE_LEARNING_RATES.items()) + ")")
    parser.add_argument("--lr-base", type=float, default=None,
                        help=f"stage-1 base-weight learning rate (default {Stage1Config.lr_base:g}; continuing: "
                             + ", ".join(f"{k} {v[1]:g}" for k, v in PROFILE_LEARNING_RATES.items()) + ")")
    parser.add_argument("--qat-policy", choices=QAT_POLICIES, default=TrainConfig.qat_policy)
    parser.add_argument("--qat-epochs", type=int, default=TrainConfig.qat_epochs)
    parser.add_argument("--qat-lr", type=float, default=TrainConfig.qat_lr)
    parser.add_argument("--auto-prompt-probability", type=float, default=None,
                        help=f"share of training prompts that are the automatic whole-image box (default "
                             f"{TrainConfig.auto_prompt_probability}; per profile when continuing)")
    parser.add_argument("--border-weight", type=float, default=None, metavar="W",
                        help="continuing profiles: BCE near the lung border counts 1 + W times (the clinic's "
                             "rule lives at the border); default per profile")
    parser.add_argument("--shift-cells", type=int, default=None, metavar="N",
                        help="continuing profiles: translate cached features by up to N cells (4 px each at 256 px) "
                             "per epoch, a free augmentation; default per profile")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--opacity-augment", type=float, default=TrainConfig.opacity_augment, metavar="P",
                        help="chance per augmented image of a simulated basal opacity (consolidation, effusion); "
                             "the mask stays the anatomical lung (default 0: off)")
    parser.add_argument("--max-train-images", type=int, default=None)
    parser.add_argument("--max-val-images", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=None, help="model name recorded in model.json "
                        "(default: the parent's name + '-clinic' when continuing, else cxr-lungs-adaqat)")
    parser.add_argument("--progress-json", action="store_true",
                        help="print progress as JSON lines on stdout (for the viewer's training dialog)")
    add_runtime_options(parser)
    parser.set_defaults(run=run)

    prepare = sub.add_parser("prepare", help="decode a manifest once into an example cache (.npz) for training")
    prepare.add_argument("--data", required=True, help="manifest CSV")
    prepare.add_argument("--out", required=True, type=Path, help="cache file (.npz)")
    prepare.add_argument("--backbone", choices=BACKBONES, default=DEFAULT_BACKBONE)
    prepare.add_argument("--image-size", type=int, default=None)
    prepare.set_defaults(run=run_prepare)


def config_from_args(args, device: str) -> TrainConfig:
    config = TrainConfig(
        backbone=args.backbone,
        base_weights=args.checkpoint,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size or TrainConfig.batch_size,
        stages=args.stages,
        device=device,
        seed=args.seed,
        auto_prompt_probability=(TrainConfig.auto_prompt_probability if args.auto_prompt_probability is None
                                 else args.auto_prompt_probability),
        border_weight=args.border_weight or 0.0,
        shift_cells=args.shift_cells or 0,
        augment=not args.no_augment,
        opacity_augment=args.opacity_augment,
        max_train_images=args.max_train_images,
        max_val_images=args.max_val_images,
        num_workers=args.workers,
        model_name=args.name,
        stage1=Stage1Config(adapters=AdapterConfig(policy=args.policy, init_r=args.init_r, target_r=args.target_r)),
        qat_epochs=args.qat_epochs,
        qat_lr=args.qat_lr,
        qat_policy=args.qat_policy,
        time_budget_s=args.time_budget,
        from_model=args.from_model,
        profile=args.profile,
    )
    given = {name for name in ("batch_size", "border_weight", "auto_prompt_probability", "shift_cells")
             if getattr(args, name) is not None}
    apply_profile_defaults(config, frozenset(given))
    if args.lr_adapter is not None:
        config.stage1.lr_adapter = args.lr_adapter
    if args.lr_base is not None:
        config.stage1.lr_base = args.lr_base
    return config


def run(args) -> int:
    try:
        device = choose_device(args.device)
    except RuntimeError as error:
        return fail(str(error))
    set_threads(args.threads)
    distributed.setup(device)  # under torchrun: join the process group (one GPU per process on CUDA)
    try:
        return train_here(args, device)
    finally:
        distributed.shutdown()


def train_here(args, device: str) -> int:
    """One process's run; under torchrun only rank 0 reports progress and prints the models written."""
    config = config_from_args(args, device)
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())  # a GUI's "Cancel": stop between steps, keep checkpoint
    progress = JsonProgress() if args.progress_json else ProgressBar()
    if not distributed.is_main():
        progress = lambda event: None  # noqa: E731 (rank 0 reports for all)
    try:
        if args.estimate:
            return print_estimate(args, config, progress)
        result = train(args.data, args.out, config, resume=args.resume, progress=progress, cancel=cancel)
    except (ManifestError, ModelLoadError, ValueError, FileNotFoundError) as error:
        return fail(str(error))
    except TrainingDiverged as error:
        return fail(str(error), EXIT_DIVERGED)
    except TrainingCancelled as error:
        return fail(str(error), EXIT_CANCELLED)
    except TrainingOutOfMemory as error:
        return fail(str(error), EXIT_OUT_OF_MEMORY)
    except OSError as error:  # disk full or not writable while saving a checkpoint or a model
        where = error.filename or args.out
        advice = "free disk space and run again with --resume" if error.errno == errno.ENOSPC else "check the --out folder"
        return fail(f"{where}: could not write ({error.strerror or error}); {advice}")
    if not distributed.is_main():
        return 0
    print(file=sys.stderr)
    for kind, path in result.models.items():
        if args.progress_json:
            print(json.dumps({"stage": "done", "kind": kind, "path": str(path)}), flush=True)
        else:
            print(f"{kind} model: {path}")
    if result.comparison is not None:
        report_comparison(args, result.comparison)
    return 0


def print_estimate(args, config, progress) -> int:
    """``--estimate``: the plan of the decoder profile on this machine (the dialog shows it before Start)."""
    if resolve_profile(config) not in CONTINUING_PROFILES:
        return fail("--estimate measures a continuing profile (tail or decoder); the full profile sizes "
                    "stage 1 with --time-budget as it starts")
    from ..training.continue_run import estimate

    plan = estimate(args.data, config, progress)
    print(json.dumps({"stage": "estimate", **plan.to_json(), "summary": plan.describe()}), flush=True)
    if not args.progress_json:
        print(plan.describe(), file=sys.stderr)
    return 0


def report_comparison(args, comparison: dict) -> None:
    """Print the held-out comparison of a continuing run; activate the model if asked and better."""
    from ..training.comparison import describe_comparison

    activated = None
    if args.activate_if_better and comparison["better"]:
        from ..models.catalog import activate_model_dir

        activated = str(activate_model_dir(args.out / INT8_DIR))
    if args.progress_json:
        print(json.dumps({"stage": "comparison", **{k: v for k, v in comparison.items() if k != "per_image"},
                          "activated": activated}), flush=True)
    print(describe_comparison(comparison), file=sys.stderr)
    if activated:
        print(f"activated: {activated}", file=sys.stderr)


def run_prepare(args) -> int:
    from ..training.example_cache import save_example_cache
    from ..training.example_loading import load_examples
    from ..io.manifest import read_manifest

    size = int(default_config(args.backbone, args.image_size)["image_size"])
    try:
        manifest = read_manifest(args.data)
    except ManifestError as error:
        return fail(str(error))
    splits, problems = {}, list(manifest.problems)
    for split in sorted({s.split for s in manifest.samples}):
        splits[split], split_problems = load_examples(manifest.split(split), size)
        problems += split_problems
    for problem in problems:
        say("warning", problem)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_example_cache(args.out, splits)
    print(f"{args.out}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()) + f" examples at {size} px")
    return 0


class ProgressBar:
    """One updating line on stderr per stage; epoch summaries on their own lines."""

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage == "prepare":
            print(event.message, file=sys.stderr)
            return
        width = 24
        filled = int(width * event.step / max(1, event.steps))
        eta = f" ETA {int(event.eta_seconds // 60)}m{int(event.eta_seconds % 60):02d}s" if event.eta_seconds is not None else ""
        loss = f" loss {event.loss:.4f}" if event.loss is not None else ""
        line = f"\r[{event.stage}] [{'#' * filled}{'.' * (width - filled)}] epoch {event.epoch}/{event.epochs}{loss}{eta}"
        if event.val_dice is not None:
            line += f" val Dice {event.val_dice:.4f}\n"
        print(line, end="", file=sys.stderr, flush=True)
        progress_line_open(not line.endswith("\n"))


class JsonProgress:
    """One JSON object per event on stdout: the fields of ``ProgressEvent``."""

    def __call__(self, event: ProgressEvent) -> None:
        print(json.dumps(asdict(event)), flush=True)
