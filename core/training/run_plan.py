"""How a clinic fine-tune (fast profile) spends its ``--time-budget``: measured, then divided.

The budget bounds the whole run: preparation, the parent's baseline check, encoding the training
views, stage 1, stage 2, the INT8 export and the final comparison. Fixed costs are measured first
(decode, load, encoder and decoder step times on this machine); what is left is split between more
augmented views (encoder time, once) and more epochs (decoder time, repeated). The same plan is
printed by ``adaqat train --estimate`` so the dialog can show it before Start.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

MAX_VIEWS = 8
VIEW_SHARE = 0.35  # of the flexible time, at most, for encoding augmented views
TAIL_VIEW_SHARE = 0.35  # views are the tail profile's regulariser too (one view per image overfit in 2 epochs)
STAGE2_SHARE = 0.25  # of the training time, for QAT
EXPORT_S = 8.0 + 8.0  # INT8 export + reloading it (~5 s), then its ONNX Runtime form (decoder graph, ~5-8 s)
ENCODER_EXPORT_S = 40.0  # a changed encoder gets a new INT8 ONNX graph (tail profile; ~25 s on 2 cores)
SLACK = 0.04  # kept free for what is not modelled (checkpoints, Python overhead)
OVERRUN_TOLERANCE = 0.05  # a plan this much over the budget still starts; more is refused before training


@dataclass
class Measurements:
    """Seconds per unit of work, measured on this machine at the start of the run."""

    setup_s: float  # already spent: decoding images, loading the parent, the first measurements
    encode_s_per_image: float  # the parent's encoder, one 1-image view
    eval_s_per_image: float  # full-resolution evaluation of one held-out image (decode + encode + decode)
    stage1_step_s: float  # one decoder training step (forward + backward) at the batch size
    stage2_step_s: float  # the same with fake quantisation


@dataclass
class FastPlan:
    views: int
    stage1_epochs: int
    stage2_epochs: int
    phases_s: dict[str, float]
    budget_s: float | None
    measured_step_s: dict[str, float] = field(default_factory=dict)  # re-measured before training

    @property
    def total_s(self) -> float:
        return sum(self.phases_s.values())

    @property
    def fits(self) -> bool:
        """The smallest run (one view, one epoch per stage) is planned whatever the budget: does it fit?"""
        return self.budget_s is None or self.total_s <= self.budget_s * (1 + OVERRUN_TOLERANCE)

    def shortfall_message(self, images: int) -> str:
        """What would fit, for a budget the smallest run exceeds (the run refuses before training)."""
        needed = math.ceil(self.total_s / 60.0)
        return (f"a {self.budget_s:.0f} s budget is too short for {images} training images on this computer: the "
                f"smallest run (one view per image, one epoch per stage) needs about {self.total_s:.0f} s as "
                f"measured; give a budget of {needed} min or more, or train on fewer images")

    def to_json(self) -> dict:
        return {**asdict(self), "total_s": round(self.total_s, 1), "fits": self.fits}

    def describe(self) -> str:
        minutes, seconds = divmod(int(round(self.total_s)), 60)
        parts = ", ".join(f"{name} {value:.0f} s" for name, value in self.phases_s.items())
        return (f"estimated {minutes} min {seconds:02d} s: {self.views} view(s) per image, "
                f"stage 1 {self.stage1_epochs} epochs, stage 2 {self.stage2_epochs} epochs ({parts})")


def epoch_seconds(step_s: float, train_views: int, selection_images: int, batch_size: int) -> float:
    """Training steps over every cached view plus the selection pass (forward only, about 1/3 step)."""
    steps = math.ceil(train_views / batch_size)
    selection_steps = math.ceil(selection_images / batch_size) if selection_images else 0
    return step_s * (steps + selection_steps / 3.0) * 1.05


def plan_fast_run(m: Measurements, train_images: int, selection_images: int, heldout_images: int, batch_size: int,
                  budget_s: float | None, default_views: int = 4, default_epochs: int = 40,
                  default_qat_epochs: int = 10, export_s: float = EXPORT_S, view_share: float = VIEW_SHARE) -> FastPlan:
    """Views and epochs that fill ``budget_s`` (None: the defaults, with their estimate)."""
    fixed = {
        "preparation": m.setup_s,
        "baseline check": heldout_images * m.eval_s_per_image,
        "selection embeddings": selection_images * m.encode_s_per_image,
        "export and final check": export_s + heldout_images * m.eval_s_per_image,
    }
    if budget_s is None:
        views, epochs1, epochs2 = default_views, default_epochs, default_qat_epochs
    else:
        flexible = max(0.0, budget_s * (1.0 - SLACK) - sum(fixed.values()))
        per_view = train_images * m.encode_s_per_image
        views = int(max(1, min(MAX_VIEWS, (flexible * view_share) // max(per_view, 1e-6))))
        training = max(0.0, flexible - views * per_view)
        epochs1, epochs2 = training_epochs(training, m.stage1_step_s, m.stage2_step_s, train_images * views,
                                           selection_images, batch_size)
    train_views = train_images * views
    phases = {
        **{k: v for k, v in fixed.items() if k != "export and final check"},
        "training embeddings": train_views * m.encode_s_per_image,
        "stage 1": epochs1 * epoch_seconds(m.stage1_step_s, train_views, selection_images, batch_size),
        "stage 2": epochs2 * epoch_seconds(m.stage2_step_s, train_views, selection_images, batch_size),
        "export and final check": fixed["export and final check"],
    }
    return FastPlan(views, epochs1, epochs2, {k: round(v, 1) for k, v in phases.items()}, budget_s)


def training_epochs(training_s: float, stage1_step_s: float, stage2_step_s: float, train_views: int,
                    selection_images: int, batch_size: int) -> tuple[int, int]:
    """Stage 1 and stage 2 epochs that fill ``training_s`` (stage 2 gets its share, stage 1 the rest)."""
    epoch1_s = epoch_seconds(stage1_step_s, train_views, selection_images, batch_size)
    epoch2_s = epoch_seconds(stage2_step_s, train_views, selection_images, batch_size)
    epochs2 = max(1, int(training_s * STAGE2_SHARE // epoch2_s))
    epochs1 = max(1, int((training_s - epochs2 * epoch2_s) // epoch1_s))  # whole epochs; the rest to stage 1
    return epochs1, epochs2
