"""The optimisation loop shared by stage 1 (AdaLoRA) and stage 2 (QAT).

It owns what both stages need and nothing stage-specific: batching, mixed precision on CUDA, the
learning-rate schedule, per-epoch validation Dice in automatic-prompt mode, best-epoch tracking,
checkpoints every epoch with exact resume, cancellation between steps, divergence detection and
progress events. Stages plug in through ``StageHooks``.
"""

from __future__ import annotations

import errno
import math
import os
import pickle
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from . import distributed
from .dataset import SegmentationDataset
from .losses import batch_dice
from .step import training_step
from .progress import (
    CancelToken,
    NeverCancel,
    ProgressCallback,
    ProgressEvent,
    TrainingCancelled,
    TrainingDiverged,
    TrainingOutOfMemory,
)

EXPLODED_LOSS = 1e4
LOW_DISK_BYTES = 256 << 20  # less free space than this after a failed write: the disk is full


@dataclass
class LoopConfig:
    epochs: int
    batch_size: int
    device: str = "cpu"
    amp: bool = True  # bf16 autocast on CUDA only
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    num_workers: int = 0
    seed: int = 0
    stop_at: float | None = None  # time.perf_counter() deadline: no epoch starts that would end past it


@dataclass
class StageHooks:
    """What a stage adds to the plain loop."""

    extra_loss: Callable[[], torch.Tensor] | None = None
    after_step: Callable[[int], None] | None = None  # called after optimizer.step, before zero_grad
    eligible_for_best: Callable[[int], bool] = lambda step: True
    extra_state: Callable[[], dict] = dict
    load_extra_state: Callable[[dict], None] = lambda state: None
    prepare_train_mode: Callable[[nn.Module], None] = lambda model: None


@dataclass
class LoopResult:
    best_state: dict[str, torch.Tensor]
    best_val_dice: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def _collate(items: list[dict]) -> dict[str, torch.Tensor]:
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


class TrainingLoop:
    def __init__(
        self,
        name: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_set: SegmentationDataset,
        val_set: SegmentationDataset,
        config: LoopConfig,
        checkpoint_path: Path,
        hooks: StageHooks | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.optimizer = optimizer
        self.train_set = train_set
        self.val_set = val_set
        self.config = config
        self.checkpoint_path = Path(checkpoint_path)
        self.hooks = hooks or StageHooks()
        self.progress = progress or (lambda event: None)
        self.cancel = cancel or NeverCancel()
        self.steps_per_epoch = max(1, math.ceil(distributed.shard_length(len(train_set)) / config.batch_size))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.use_amp = config.amp and config.device.startswith("cuda")
        self.train_model = model  # DistributedDataParallel(model) under torchrun, from run()

    # -- schedule -------------------------------------------------------------------------------
    def _set_lr(self, step: int) -> None:
        warmup = max(1, int(self.total_steps * self.config.warmup_fraction))
        if step < warmup:
            factor = (step + 1) / warmup
        else:
            progress = (step - warmup) / max(1, self.total_steps - warmup)
            factor = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * max(factor, 0.01)

    # -- main -----------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> LoopResult:
        state = self._load_checkpoint() if resume else None
        start_epoch = state["epoch"] if state else 0
        step = state["step"] if state else 0
        history = list(state["history"]) if state else []
        best = {"dice": state["best_val_dice"], "epoch": state["best_epoch"]} if state else {"dice": -1.0, "epoch": 0}
        best_state = self._trainable_snapshot() if state is None else state["best_state"]
        self.train_model = distributed.wrap(self.model)
        started = time.perf_counter()
        steps_done_here = 0
        for epoch in range(start_epoch, self.config.epochs):
            if self._would_overrun(started, epoch - start_epoch):
                self.progress(ProgressEvent(self.name, epoch, self.config.epochs, step, self.total_steps,
                                            message=f"{self.name}: time budget reached after {epoch} epochs"))
                break
            self.train_set.set_epoch(epoch)
            loader = self._loader(epoch)
            self.train_model.train()
            self.hooks.prepare_train_mode(self.model)
            losses = []
            for batch in loader:
                if distributed.any_rank(self.cancel.is_set()):
                    raise TrainingCancelled(f"{self.name} cancelled at epoch {epoch + 1}; resume with --resume")
                loss = self._train_step(batch, step)
                losses.append(loss)
                step += 1
                steps_done_here += 1
                elapsed = time.perf_counter() - started
                eta = elapsed / steps_done_here * (self.total_steps - step)
                self.progress(ProgressEvent(self.name, epoch + 1, self.config.epochs, step, self.total_steps, loss, None, eta))
            val_dice = self.validate()
            mean_loss = distributed.mean(sum(losses) / max(1, len(losses)))  # over every process's shard
            record = {"epoch": epoch + 1, "step": step, "loss": mean_loss, "val_dice": val_dice}
            history.append(record)
            if self.hooks.eligible_for_best(step) and val_dice > best["dice"]:
                best = {"dice": val_dice, "epoch": epoch + 1}
                best_state = self._trainable_snapshot()
            elif best["epoch"] == 0 and not self.hooks.eligible_for_best(step):
                best_state = self._trainable_snapshot()  # latest until an eligible epoch exists
            self._save_checkpoint(epoch + 1, step, history, best, best_state)
            eta = (time.perf_counter() - started) / steps_done_here * (self.total_steps - step) if steps_done_here else 0.0
            self.progress(ProgressEvent(self.name, epoch + 1, self.config.epochs, step, self.total_steps,
                                        record["loss"], val_dice, eta, f"epoch {epoch + 1} val Dice {val_dice:.4f}"))
        if best["epoch"] == 0:  # no eligible epoch (very short runs): keep the last
            best = {"dice": history[-1]["val_dice"] if history else float("nan"), "epoch": len(history)}
            best_state = self._trainable_snapshot()
        return LoopResult(best_state, best["dice"], best["epoch"], history, time.perf_counter() - started)

    def _would_overrun(self, started: float, epochs_done: int) -> bool:
        """A guard for the whole-run budget: the plan sizes epochs, this catches a slower machine."""
        if self.config.stop_at is None or epochs_done == 0:
            return False
        per_epoch = (time.perf_counter() - started) / epochs_done
        return bool(distributed.broadcast(time.perf_counter() + per_epoch > self.config.stop_at))  # rank 0 decides

    def _loader(self, epoch: int) -> DataLoader:
        """This epoch's batches: a seeded shuffle of every example, or of this process's shard under torchrun."""
        shared = dict(batch_size=self.config.batch_size, collate_fn=_collate, num_workers=self.config.num_workers,
                      drop_last=distributed.shard_length(len(self.train_set)) > self.config.batch_size,
                      persistent_workers=False)
        if distributed.context().enabled:
            return DataLoader(self.train_set, sampler=distributed.train_sampler(self.train_set, self.config.seed, epoch),
                              **shared)
        return DataLoader(self.train_set, shuffle=True, generator=torch.Generator().manual_seed(self.config.seed * 1000 + epoch),
                          **shared)

    def _train_step(self, batch: dict[str, torch.Tensor], step: int) -> float:
        try:
            return self._optimisation_step(batch, step)
        except torch.cuda.OutOfMemoryError:
            raise self._out_of_memory() from None

    def _out_of_memory(self) -> TrainingOutOfMemory:
        """Free what the failed step held and say how to retry (a smaller batch, or the CPU)."""
        self.optimizer.zero_grad(set_to_none=True)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        size = self.config.batch_size
        retry = f"--batch-size {size // 2} or --device cpu" if size > 1 else "--device cpu"
        return TrainingOutOfMemory(f"{self.name}: GPU out of memory at batch size {size}; retry with {retry}")

    def _optimisation_step(self, batch: dict[str, torch.Tensor], step: int) -> float:
        self._set_lr(step)
        after = (lambda: self.hooks.after_step(step)) if self.hooks.after_step is not None else None
        return training_step(self.train_model, self.optimizer, batch, device=self.config.device, amp=self.use_amp,
                             extra_loss=self.hooks.extra_loss, grad_clip=self.config.grad_clip, after_step=after,
                             check_loss=lambda value: self._check_loss(distributed.mean(value), step))

    def _check_loss(self, value: float, step: int) -> None:
        if not math.isfinite(value) or value > EXPLODED_LOSS:
            raise TrainingDiverged(
                f"{self.name}: loss became {value} at step {step + 1}; lower the learning rate and retry "
                "(nothing was saved from this run)"
            )

    def validate(self) -> float:
        try:
            return self._validate()
        except torch.cuda.OutOfMemoryError:
            raise self._out_of_memory() from None

    @torch.no_grad()
    def _validate(self) -> float:
        if len(self.val_set) == 0:
            return float("nan")
        self.model.eval()
        mine = distributed.validation_indices(len(self.val_set))  # all of them with one process
        subset = self.val_set if len(mine) == len(self.val_set) else Subset(self.val_set, mine)
        loader = DataLoader(subset, batch_size=self.config.batch_size, shuffle=False, collate_fn=_collate)
        scores = [torch.zeros(0)]
        for batch in loader:
            batch = {k: v.to(self.config.device) for k, v in batch.items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_amp):
                logits = self.model(batch["image"], batch["box"])
            scores.append(batch_dice(logits, batch["target"], batch["valid"]).float().cpu())
        scores = torch.cat(scores)
        if not distributed.context().enabled:
            return float(scores.mean())
        total, count = distributed.sum_and_count(float(scores.double().sum()), len(scores))
        return total / count

    # -- state ----------------------------------------------------------------------------------
    def _trainable_snapshot(self) -> dict[str, torch.Tensor]:
        """A CPU copy of the whole state (base, adapters, quantiser state): simple and exact."""
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _save_checkpoint(self, epoch, step, history, best, best_state) -> None:
        if not distributed.is_main():  # every process holds the same state: one file
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "epochs": self.config.epochs,
            "epoch": epoch,
            "step": step,
            "history": history,
            "best_val_dice": float(best["dice"]),
            "best_epoch": int(best["epoch"]),
            "best_state": best_state,
            "model": self._trainable_snapshot(),
            "optimizer": self.optimizer.state_dict(),
            "extra": self.hooks.extra_state(),
        }
        partial = self.checkpoint_path.with_suffix(".partial")
        try:
            torch.save(payload, partial)
        except RuntimeError:  # torch reports a full disk as an opaque RuntimeError: say what it is
            partial.unlink(missing_ok=True)
            raise _write_failure(self.checkpoint_path) from None
        partial.replace(self.checkpoint_path)

    def _load_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.is_file():
            return None
        state = read_checkpoint(self.checkpoint_path)
        self.model.load_state_dict(state["model"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.hooks.load_extra_state(state.get("extra", {}))
        return state


def _write_failure(path: Path) -> OSError:
    """An OSError naming the likely cause of a failed checkpoint write (disk full, else a cut-short write)."""
    try:
        full = shutil.disk_usage(path.parent).free < LOW_DISK_BYTES
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return OSError(errno.EIO, "the write was cut short (disk full, quota or file size limit)", str(path))


CHECKPOINT_KEYS = ("epochs", "epoch", "step", "history", "best_val_dice", "best_epoch", "best_state", "model", "optimizer")


def read_checkpoint(path: Path) -> dict:
    """A ``--resume`` checkpoint, read without unpickling code; ValueError with one line if it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: refused, the checkpoint holds more than plain tensors; delete it or train "
                         "without --resume") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{path}: not a readable training checkpoint ({detail}); delete it or train without --resume") from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f"{path}: not a checkpoint of this trainer (no {missing[0]!r}); delete it or train without --resume")
    return state
