"""``adaqat train``: data -> stage 1 (AdaLoRA, FP32 model) -> stage 2 (QAT, INT8 model).

The output folder holds ``model-fp32/`` and (after stage 2) ``model-int8/``, each a complete model
directory, plus the per-stage checkpoints used by ``--resume``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..models.artifact import write_model_dir
from ..models.onnx_export import add_onnx_form_after_training
from ..models.registry import DEFAULT_BACKBONE, default_config
from ..models.safe_weights import sha256_of
from . import distributed
from .augment import AugmentConfig
from .card import library_versions, model_version, utc_now
from .dataset import SegmentationDataset
from .example import Example, load_example_cache
from .loop import LoopConfig
from .mixture import training_data_for
from .progress import ProgressEvent
from .stage1 import Stage1Config, run_stage1

FP32_DIR, INT8_DIR = "model-fp32", "model-int8"
DEFAULT_MODEL_NAME = "cxr-lungs-adaqat"


@dataclass
class TrainConfig:
    backbone: str = DEFAULT_BACKBONE
    base_weights: str | None = None  # None: the bundled LiteMedSAM weights (lite_medsam) / random (ViT)
    image_size: int | None = None
    epochs: int = 40
    batch_size: int = 8
    stages: str = "both"  # "1", "2" or "both"
    device: str = "cpu"
    seed: int = 0
    auto_prompt_probability: float = 0.5
    border_weight: float = 0.0  # continuing profiles: extra BCE weight near the lung border (losses.py)
    shift_cells: int = 0  # continuing profiles: random translation of cached features (embedding_cache.py)
    augment: bool = True
    opacity_augment: float = 0.0  # chance per augmented view of a simulated basal opacity (mask unchanged)
    max_train_images: int | None = None
    max_val_images: int | None = None
    num_workers: int = 0
    model_name: str | None = None  # None: DEFAULT_MODEL_NAME (full profile) / "<parent>-clinic" (decoder profile)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    qat_epochs: int = 10
    qat_lr: float = 2e-5
    qat_policy: str = "merged"
    time_budget_s: float | None = None  # the whole run fits in it (full profile: stage 1 only)
    from_model: str | None = None  # None/"active": the active model; a backbone name: its base weights
    profile: str = "auto"  # "tail" / "decoder" (continue a model), "full" (from base weights), "auto"

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class TrainData:
    train: list[Example]
    val: list[Example]
    problems: list[str]


def load_train_data(data_path: str | Path, image_size: int, config: TrainConfig) -> TrainData:
    """From a manifest CSV (decoded here), a prepared example cache (.npz) or an annotation store folder."""
    if Path(data_path).is_dir():
        from .store_source import examples_from_store

        splits, problems = examples_from_store(data_path, image_size)
        return TrainData(splits["train"][: config.max_train_images], splits["val"][: config.max_val_images], problems)
    if str(data_path).endswith(".npz"):
        splits = load_example_cache(data_path)
        train, val = splits.get("train", []), splits.get("val", [])
        if train and train[0].image.shape[0] != image_size:
            raise ValueError(f"{data_path}: examples are {train[0].image.shape[0]} px, the model needs {image_size} px")
        return TrainData(train[: config.max_train_images], val[: config.max_val_images], [])
    from .examples import load_examples  # decoding needs OpenCV / pydicom
    from ..io.manifest import read_manifest

    manifest = read_manifest(data_path)
    train_samples = manifest.split("train")[: config.max_train_images]
    val_samples = manifest.split("val")[: config.max_val_images]
    train, train_problems = load_examples(train_samples, image_size)
    val, val_problems = load_examples(val_samples, image_size)
    return TrainData(train, val, manifest.problems + train_problems + val_problems)


def augment_config_of(config: TrainConfig) -> AugmentConfig:
    return AugmentConfig(opacity_probability=config.opacity_augment)


def datasets(data: TrainData, config: TrainConfig) -> tuple[SegmentationDataset, SegmentationDataset]:
    train_set = SegmentationDataset(data.train, train=config.augment, seed=config.seed,
                                    auto_prompt_probability=config.auto_prompt_probability,
                                    augment_config=augment_config_of(config))
    if not config.augment:
        train_set.train = False
    return train_set, SegmentationDataset(data.val, train=False)


def base_weights_for(config: TrainConfig) -> tuple[str | None, str]:
    """(weights argument for build_backbone, sha256 recorded in the card)."""
    if config.base_weights:
        return config.base_weights, sha256_of(config.base_weights)
    if config.backbone == "lite_medsam":
        from ..models.lite_medsam import pretrained_weights_path

        return "pretrained", sha256_of(pretrained_weights_path())
    return None, "random-init"


PROFILES = ("auto", "tail", "decoder", "full")
CONTINUING_PROFILES = ("tail", "decoder")  # continue a trained model over cached encoder outputs
# stage-1 (adapter, base-weight) learning rates of the continuing profiles, measured on clinic samples:
# a few dozen images overfit at the full profile's rates (BENCHMARKS.md, "Clinic fine-tune")
PROFILE_LEARNING_RATES = {"decoder": (5e-4, 5e-5), "tail": (1e-3, 1e-4)}  # tail at 5e-4: shenzhen learned less
# what else a continuing profile sets unless the caller gave it: the tail profile's QAT step holds 3.9 GiB
# at batch 8 and 2.7 GiB at batch 4 (measured; a laptop has 4 GiB for the whole run); its features are
# translated by up to 2 cells per epoch (tens of images overfit it within 2-3 epochs without); the BCE of
# the border band counts 4x (clinic-sample val: +0.0039 against +0.0030 without, 15 images)
PROFILE_SETTINGS = {"tail": {"batch_size": 4, "shift_cells": 2, "border_weight": 3.0}}


def apply_profile_defaults(config: "TrainConfig", given: frozenset[str] = frozenset()) -> None:
    """Give a continuing run its profile's stage-1 rates and settings, except those in ``given`` (a
    Python caller of ``train`` gets them as the CLI and the viewer do)."""
    try:
        profile = resolve_profile(config)
    except ValueError:
        return  # train() reports the conflict
    if profile in PROFILE_LEARNING_RATES:
        config.stage1.lr_adapter, config.stage1.lr_base = PROFILE_LEARNING_RATES[profile]
    for name, value in PROFILE_SETTINGS.get(profile, {}).items():
        if name not in given:
            setattr(config, name, value)


def resolve_profile(config: TrainConfig) -> str:
    """``auto``: continue the given (or active) model with the tail profile (``continue_run`` falls back to
    the decoder profile for a backbone the tail cannot split), unless the run asks
    for base weights (``--from <backbone>``, ``--checkpoint``, a SAM ViT backbone): then ``full``."""
    from ..models.registry import BACKBONES

    from_base = config.from_model in BACKBONES
    wants_base = from_base or bool(config.base_weights) or config.backbone != DEFAULT_BACKBONE
    if config.profile not in PROFILES:
        raise ValueError(f"unknown profile '{config.profile}' (use {', '.join(PROFILES)})")
    if config.profile in CONTINUING_PROFILES and wants_base:
        raise ValueError(f"the {config.profile} profile continues a trained model; drop --checkpoint/--backbone or give "
                         "--from a model name or folder")
    if config.profile == "full" and config.from_model and not from_base:
        raise ValueError(f"the full profile trains from base weights, not from '{config.from_model}'; "
                         "use --from lite_medsam, or --profile tail to continue that model")
    if config.profile == "auto":
        return "full" if wants_base else "tail"
    return config.profile


def train(manifest_path: str | Path, out_dir: str | Path, config: TrainConfig, resume: bool = False,
          progress=None, cancel=None) -> dict[str, Path]:
    """Run the requested stages; returns the model directories written.

    Under torchrun (``core.training.distributed``) every process trains, rank 0 alone writes.
    """
    profile = resolve_profile(config)
    if profile in CONTINUING_PROFILES:
        if distributed.world_size() > 1:
            raise ValueError(f"the {config.profile} profile is a short single-process run; under torchrun train the full "
                             "profile (--from lite_medsam, or --backbone with --checkpoint)")
        from .continue_run import continue_training

        if resume and progress:
            progress(ProgressEvent("prepare", 0, 0, 0, 0,
                                   message=f"a {profile}-profile run is short: --resume starts it again"))
        if config.stages != "both" and progress:
            progress(ProgressEvent("prepare", 0, 0, 0, 0, message=f"the {profile} profile always runs both stages "
                                   "(it writes an INT8 model); --stages applies to --profile full"))
        return continue_training(manifest_path, out_dir, config, progress, cancel)
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
            return written
        add_onnx_form_after_training(written["int8"], lambda text: emit(ProgressEvent("prepare", 0, 0, 0, 0, message=text)))
        for checkpoint in ("stage1_checkpoint.pt", "stage2_checkpoint.pt"):  # the INT8 model is final
            (out_dir / checkpoint).unlink(missing_ok=True)
    return written
