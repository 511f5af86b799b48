"""``train()``: one entry for every profile; it hands the run to the profile's runner (``RUNNERS``).

The full profile is here: data -> stage 1 (AdaLoRA, FP32 model) -> stage 2 (QAT, INT8 model). The output
folder holds ``model-fp32/`` and (after stage 2) ``model-int8/``, each a complete model directory, plus the
per-stage checkpoints used by ``--resume`` (``config``: the run folder's layout). The continuing profiles
(tail, decoder) are :mod:`.continue_run`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch

from ..models.artifact import write_model_dir
from ..models.onnx_form_writer import add_onnx_form_after_training
from ..models.registry import default_config
from ..models.safe_weights import sha256_of
from . import distributed
from .config import CHECKPOINTS, DEFAULT_MODEL_NAME, FP32_DIR, TrainConfig, apply_profile_defaults, resolve_profile
from .loop import LoopConfig
from .mixture import training_data_for
from .progress import ProgressEvent
from .provenance import library_versions, model_version, utc_now
from .result import TrainResult
from .stage1 import run_stage1
from .train_data import datasets, load_train_data


def base_weights_for(config: TrainConfig) -> tuple[str | None, str]:
    """(weights argument for build_backbone, sha256 recorded in the card)."""
    if config.base_weights:
        return config.base_weights, sha256_of(config.base_weights)
    if config.backbone == "lite_medsam":
        from ..models.lite_medsam import pretrained_weights_path

        return "pretrained", sha256_of(pretrained_weights_path())
    return None, "random-init"


def train(manifest_path: str | Path, out_dir: str | Path, config: TrainConfig, resume: bool = False,
          progress=None, cancel=None) -> TrainResult:
    """Run the config's profile (``auto``: see ``config.resolve_profile``); returns the models written and,
    for a continuing profile, the held-out comparison with the model it continued.

    Under torchrun (``core.training.distributed``) every process trains, rank 0 alone writes.
    """
    if not config.profile_defaults_applied:
        apply_profile_defaults(config)
    return RUNNERS[resolve_profile(config)](manifest_path, out_dir, config, resume, progress, cancel)


def train_continuing(manifest_path, out_dir, config: TrainConfig, resume: bool, progress, cancel) -> TrainResult:
    """The tail and decoder profiles: a short single-process run that continues a trained model."""
    profile = resolve_profile(config)
    if distributed.world_size() > 1:
        raise ValueError(f"the {config.profile} profile is a short single-process run; under torchrun train the full "
                         "profile (--from lite_medsam, or --backbone with --checkpoint)")
    if resume and progress:
        progress(ProgressEvent("prepare", 0, 0, 0, 0,
                               message=f"a {profile}-profile run is short: --resume starts it again"))
    if config.stages != "both" and progress:
        progress(ProgressEvent("prepare", 0, 0, 0, 0, message=f"the {profile} profile always runs both stages "
                               "(it writes an INT8 model); --stages applies to --profile full"))
    from .continue_run import continue_training  # scoring full-size images needs OpenCV / pydicom

    return continue_training(manifest_path, out_dir, config, progress, cancel)


def train_full(manifest_path, out_dir, config: TrainConfig, resume: bool, progress, cancel) -> TrainResult:
    """The full profile: both stages from base weights (``--stages`` may run one)."""
    torch.manual_seed(config.seed)
    out_dir = Path(out_dir)
    if distributed.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
    emit = progress or (lambda event: None)
    backbone_config = default_config(config.backbone, config.image_size)
    image_size = int(backbone_config["image_size"])
    data = load_train_data(manifest_path, image_size, config)
    for problem in data.problems:
        emit(ProgressEvent("prepare", 0, config.epochs, 0, 0, message=f"warning: {problem}"))
    if not data.train:
        raise ValueError(f"{manifest_path}: no usable training images (split 'train')")
    train_set, val_set = datasets(data, config)
    loop_config = LoopConfig(epochs=config.epochs, batch_size=config.batch_size, device=config.device,
                             num_workers=config.num_workers, seed=config.seed)
    written: dict[str, Path] = {}
    if config.stages in ("1", "both"):
        weights_arg, base_sha = base_weights_for(config)
        result = run_stage1(config.backbone, weights_arg, backbone_config if config.backbone != "lite_medsam" else None,
                            train_set, val_set, loop_config, config.stage1, out_dir, resume, progress, cancel,
                            time_budget_s=None if resume else config.time_budget_s)
        created = utc_now()
        digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in list(result.merged_state.values())[:8])).hexdigest()
        card = {
            "name": config.model_name or DEFAULT_MODEL_NAME,
            "version": model_version(created, digest),
            "backbone": config.backbone,
            "backbone_config": backbone_config,
            "precision": "fp32",
            "created": created,
            "base_weights_sha256": base_sha,
            "method": "AdaLoRA stage 1",
            "training_data": training_data_for(manifest_path, data.train),
            "adapter": {**config.stage1.adapters.to_json(), "final_rank_pattern": result.rank_pattern,
                        "final_total_rank": sum(result.rank_pattern.values())},
            "training": {
                "train_images": len(data.train),
                "val_images": len(data.val),
                "skipped_rows": len(data.problems),
                "epochs": loop_config.epochs,
                "processes": distributed.world_size(),  # --batch-size per process
                "best_epoch": result.loop.best_epoch,
                "seconds": round(result.loop.seconds, 1),
                "history": result.loop.history,
                "config": config.to_json(),
            },
            "metrics": {"val_dice_auto_model_resolution": result.loop.best_val_dice},
            "parameters": {
                "trainable": result.trainable_parameters,
                "total_with_adapters": result.total_parameters,
                "full_finetune": result.full_finetune_parameters,
                "reduction_vs_full": round(result.full_finetune_parameters / max(1, result.trainable_parameters), 2),
            },
            "versions": library_versions(),
        }
        written["fp32"] = out_dir / FP32_DIR
        if distributed.is_main():
            written["fp32"] = write_model_dir(out_dir / FP32_DIR, card, result.merged_state)
        distributed.barrier()  # stage 2 reads it on every process
    if config.stages in ("2", "both"):
        from .stage2 import run_stage2

        written["int8"] = run_stage2(out_dir / FP32_DIR, out_dir, train_set, val_set, loop_config, config,
                                     resume=resume, progress=progress, cancel=cancel)
        if not distributed.is_main():  # the rest is rank 0's writing
            return TrainResult(written)
        add_onnx_form_after_training(written["int8"], lambda text: emit(ProgressEvent("prepare", 0, 0, 0, 0, message=text)))
        for checkpoint in CHECKPOINTS:  # the INT8 model is final
            (out_dir / checkpoint).unlink(missing_ok=True)
    return TrainResult(written)


RUNNERS: dict[str, Callable[..., TrainResult]] = {  # profile -> runner (resolve_profile never gives "auto")
    "full": train_full,
    "tail": train_continuing,
    "decoder": train_continuing,
}
