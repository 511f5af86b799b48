"""The one progress interface every trainer reports through (CLI progress bar, GUI dialog)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..errors import AdaqatError


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # "stage1", "stage2", "prepare", "export"
    epoch: int  # 1-based; 0 before the first epoch
    epochs: int
    step: int  # global optimisation step within the stage
    steps: int
    loss: float | None = None
    val_dice: float | None = None
    eta_seconds: float | None = None
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class CancelToken(Protocol):
    """Anything with ``is_set()``: ``threading.Event`` in the GUI, a flag in tests."""

    def is_set(self) -> bool: ...


class NeverCancel:
    def is_set(self) -> bool:
        return False


class TrainingCancelled(Exception):
    """The user cancelled; the last completed epoch's checkpoint is kept for ``--resume``."""


class TrainingDiverged(AdaqatError):
    """The loss became NaN/inf or exploded; the run stops with a message instead of saving garbage."""


class TrainingOutOfMemory(AdaqatError):
    """The GPU ran out of memory; the message names the batch size to retry with (or the CPU)."""
