"""Stage 1: AdaLoRA fine-tuning of a SAM-style segmenter (adapters + policy-chosen base weights)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..models.registry import build_backbone
from .adapters import (
    ADAPTER_NAME,
    add_adapters,
    adapter_parameters,
    base_trainable_parameters,
    count_parameters,
    orthogonality_penalty,
)
from . import distributed
from .config import STAGE1_CHECKPOINT, Stage1Config
from .budget import epochs_within, seconds_per_step
from .dataset import SegmentationDataset
from .progress import ProgressEvent
from .loop import LoopConfig, LoopResult, StageHooks, TrainingLoop, read_checkpoint


@dataclass
class Stage1Result:
    merged_state: dict[str, torch.Tensor]
    rank_pattern: dict[str, int]
    trainable_parameters: int
    total_parameters: int
    full_finetune_parameters: int
    loop: LoopResult


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BatchNorm running statistics fixed: small fine-tuning batches would corrupt them."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def effective_ranks(model: nn.Module) -> dict[str, int]:
    """Rank actually kept per adapted module: the non-zero singular values AdaLoRA left."""
    ranks = {}
    for name, module in model.named_modules():
        lora_e = getattr(module, "lora_E", None)
        if isinstance(lora_e, nn.ParameterDict) and ADAPTER_NAME in lora_e:
            ranks[name.replace("model.", "", 1) if name.startswith("model.") else name] = int((lora_e[ADAPTER_NAME] != 0).sum())
    return ranks


def run_stage1(
    backbone: str,
    base_weights: str | Path | None,
    backbone_config: dict | None,
    train_set: SegmentationDataset,
    val_set: SegmentationDataset,
    loop_config: LoopConfig,
    config: Stage1Config,
    work_dir: Path,
    resume: bool = False,
    progress=None,
    cancel=None,
    time_budget_s: float | None = None,
    model: nn.Module | None = None,
) -> Stage1Result:
    """``model``: start from this float model (a continued clinic model) instead of the backbone's weights."""
    if model is None:
        model = build_backbone(backbone, base_weights, backbone_config)
    full_count = sum(p.numel() for p in model.parameters())
    checkpoint_path = Path(work_dir) / STAGE1_CHECKPOINT
    if resume and checkpoint_path.is_file():  # the epoch count (maybe budget-chosen) is the original run's
        loop_config.epochs = int(read_checkpoint(checkpoint_path)["epochs"])
    elif time_budget_s:
        trial = copy.deepcopy(model).to(loop_config.device)
        add_adapters(trial, config.adapters, total_steps=100)
        step_s = seconds_per_step(trial, train_set, loop_config.batch_size, loop_config.device)
        del trial
        epochs = epochs_within(time_budget_s, step_s, distributed.shard_length(len(train_set)), len(val_set),
                               loop_config.batch_size, loop_config.epochs)
        loop_config.epochs = distributed.broadcast(epochs)  # rank 0's measurement decides for all
        if progress:
            progress(ProgressEvent("prepare", 0, loop_config.epochs, 0, 0,
                                   message=f"{step_s:.2f} s per step: {loop_config.epochs} epochs fit in {time_budget_s:.0f} s"))
    steps_per_epoch = max(1, -(-distributed.shard_length(len(train_set)) // loop_config.batch_size))
    total_steps = steps_per_epoch * loop_config.epochs
    wrapped = add_adapters(model, config.adapters, total_steps)
    model.to(loop_config.device)
    trainable, total = count_parameters(model)
    groups = [
        {"params": adapter_parameters(model), "lr": config.lr_adapter, "weight_decay": 0.0},
        {"params": base_trainable_parameters(model), "lr": config.lr_base, "weight_decay": config.weight_decay},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
    hooks = adalora_hooks(model, wrapped, config, loop_config.device) if wrapped is not None else StageHooks(
        prepare_train_mode=freeze_batchnorm
    )
    loop = TrainingLoop("stage1", model, optimizer, train_set, val_set, loop_config,
                        checkpoint_path, hooks, progress, cancel)
    result = loop.run(resume=resume)
    model.load_state_dict(result.best_state)
    ranks = effective_ranks(model)
    mask = wrapped.peft_config[ADAPTER_NAME].rank_pattern if wrapped is not None else None
    agreed = distributed.agreement(ranks, mask, result.best_state)  # raises if the processes' ranks differ
    if agreed and progress:
        progress(ProgressEvent("prepare", 0, loop_config.epochs, 0, 0, message=agreed))
    plain = wrapped.merge_and_unload() if wrapped is not None else model
    merged = {k: v.detach().cpu().clone() for k, v in plain.state_dict().items()}
    return Stage1Result(merged, ranks, trainable, total, full_count, result)


def adalora_hooks(model: nn.Module, wrapped, config: Stage1Config, device: str) -> StageHooks:
    """Orthogonality penalty, rank re-allocation each step, and resumable allocator state."""
    peft_config = wrapped.peft_config[ADAPTER_NAME]
    final_phase_start = peft_config.total_step - peft_config.tfinal
    orth_weight = config.adapters.orth_reg_weight

    def extra_state() -> dict:
        allocator = wrapped.rankallocator
        return {
            "rank_pattern": peft_config.rank_pattern or {},
            "ipt": dict(allocator.ipt),
            "exp_avg_ipt": dict(allocator.exp_avg_ipt),
            "exp_avg_unc": dict(allocator.exp_avg_unc),
        }

    def load_extra_state(state: dict) -> None:
        allocator = wrapped.rankallocator
        peft_config.rank_pattern = state.get("rank_pattern") or None
        for key in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
            setattr(allocator, key, {k: v.to(device) for k, v in state.get(key, {}).items()})

    return StageHooks(
        extra_loss=(lambda: orth_weight * orthogonality_penalty(model)) if orth_weight > 0 else None,
        after_step=wrapped.update_and_allocate,
        eligible_for_best=lambda step: step >= final_phase_start,
        extra_state=extra_state,
        load_extra_state=load_extra_state,
        prepare_train_mode=freeze_batchnorm,
    )
