"""A training run's settings and where its files go: ``TrainConfig``, the profiles and their defaults,
the run folder's layout. Every profile's runner, the CLI and the viewer read them from here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..models.registry import DEFAULT_BACKBONE
from .augment import AugmentConfig

DEFAULT_MODEL_NAME = "cxr-lungs-adaqat"

# The run folder (``--out``): one complete model directory per precision, the per-stage checkpoints that
# ``--resume`` reads (removed once the INT8 model is written), and a continuing run's held-out comparison.
FP32_DIR, INT8_DIR = "model-fp32", "model-int8"
STAGE1_CHECKPOINT, STAGE2_CHECKPOINT = "stage1_checkpoint.pt", "stage2_checkpoint.pt"
CHECKPOINTS = (STAGE1_CHECKPOINT, STAGE2_CHECKPOINT)
COMPARISON_FILE = "comparison.json"


@dataclass
class AdapterConfig:
    policy: str = "everywhere"
    init_r: int = 12
    target_r: int = 8
    tinit_fraction: float = 0.1
    tfinal_fraction: float = 0.2
    delta_t: int = 10
    orth_reg_weight: float = 0.1
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Stage1Config:
    lr_adapter: float = 2e-3
    lr_base: float = 2e-4
    weight_decay: float = 0.01
    adapters: AdapterConfig = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.adapters is None:
            self.adapters = AdapterConfig()


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
    # set by apply_profile_defaults: train() applies them itself when the caller has not
    profile_defaults_applied: bool = field(default=False, repr=False, compare=False)

    def to_json(self) -> dict:
        record = json.loads(json.dumps(asdict(self), default=str))
        record.pop("profile_defaults_applied")
        return record


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


def apply_profile_defaults(config: TrainConfig, given: frozenset[str] = frozenset()) -> None:
    """Give a continuing run its profile's stage-1 rates and settings, except those in ``given``. The CLI
    calls it with the options it was given; ``train()`` calls it for a caller that did not, so a Python
    caller trains as the CLI and the viewer do."""
    config.profile_defaults_applied = True
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


def augment_config_of(config: TrainConfig) -> AugmentConfig:
    return AugmentConfig(opacity_probability=config.opacity_augment)
