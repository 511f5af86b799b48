"""The clinic fine-tune (fast profile): continue the active model on the clinic's reviewed images.

A short CPU run that starts from generic weights can only lose against the shipped model, and a
laptop cannot afford the encoder in every step. So this profile starts from the parent model
itself (its INT8 layers dequantised exactly), keeps its image encoder as validated, and trains the
prompt decoder on embeddings the encoder computes once per augmented view:

1. prepare: decode the data, load the parent, score it on the held-out images (the baseline);
2. measure encoder and decoder step times, then plan views and epochs to fill ``--time-budget``;
3. stage 1: AdaLoRA on the mask decoder (``decoder`` adapter policy) over the cached embeddings;
4. stage 2: INT8 QAT of the decoder, then a real INT8 model (the encoder requantises to the same int8);
5. the written model is loaded from disk and scored on the same held-out images; the comparison
   (means, paired Wilcoxon p) goes into ``model.json`` and ``comparison.json``. The model is offered
   for activation only when it is better.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..evaluation.runner import Evaluation, HeldOutImage, evaluate_images, manifest_images
from .comparison import comparison_record
from ..models.artifact import update_card
from ..models.int8 import export_int8_model_dir
from ..models.loading import LoadedModel, load_model_dir
from ..models.onnx_form_writer import add_onnx_form_after_training
from ..segment.confidence_calibration import calibration as confidence_calibration, describe as describe_calibration
from .adapters import AdapterConfig, add_adapters, adapter_parameters, base_trainable_parameters, count_parameters
from .budget import seconds_per_step
from .provenance import library_versions, model_version, utc_now
from .config import CHECKPOINTS, COMPARISON_FILE, INT8_DIR, STAGE1_CHECKPOINT, STAGE2_CHECKPOINT, TrainConfig, \
    augment_config_of, resolve_profile
from .embedding_cache import CachedEmbeddingDataset, build_cache
from .memory import release_freed_memory
from .encoder_tail import TailDecoder, TailProfileUnsupported, check_splittable, head_encoder
from .loop import LoopConfig, StageHooks, TrainingLoop
from .parent import ParentModel, load_parent, trainable_float_model
from .progress import CancelToken, ProgressCallback, ProgressEvent
from .result import TrainResult
from .prompt_decoder import PromptDecoder
from .run_plan import ENCODER_EXPORT_S, EXPORT_S, SLACK, TAIL_VIEW_SHARE, VIEW_SHARE, FastPlan, Measurements, plan_fast_run, training_epochs
from .stage1 import adalora_hooks, effective_ranks
from .stage2 import prepare_qat, remove_fake_quant
from .train_data import TrainData, load_train_data

ESTIMATE_EVAL_IMAGES = 2
CLINIC_SUFFIX = "-clinic"
SELECTION_SHARE = 0.15  # of the training images, kept aside to choose the best epoch
MIN_TRAIN_TO_SPLIT = 6
NO_VAL_HELDOUT_SHARE = 0.3  # of train, held out to compare when the data has no val split
SCORING_SHARE = 0.125  # of the budget, at most, for scoring one model on the held-out images
MIN_SCORED = 10  # held-out images scored whatever the budget (all of them when there are fewer)


@dataclass
class FastRun:
    """What the run holds between phases (kept in one place so each phase is a short function)."""

    config: TrainConfig
    out_dir: Path
    started: float
    emit: ProgressCallback
    cancel: CancelToken | None
    parent: ParentModel | None = None
    loaded: LoadedModel | None = None
    data: TrainData | None = None
    heldout: list[HeldOutImage] | None = None
    selection: list | None = None  # examples that choose the best epoch (never the compared ones)
    selection_source: str = ""
    heldout_source: str = "the val split"

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def say(self, message: str) -> None:
        self.emit(ProgressEvent("prepare", 0, 0, 0, 0, message=message))


def heldout_images(data_path, data, problems: list[str]) -> list[HeldOutImage]:
    """The reviewed images kept out of training, at full resolution where the source has them."""
    from ..io.manifest import read_manifest

    path = Path(data_path)
    held_out = {example.id for example in data.val}
    if path.is_dir():
        from .store_source import heldout_from_store

        return heldout_from_store(path, held_out)
    if str(data_path).endswith(".npz"):  # a prepared cache holds model-size images only
        return [HeldOutImage(e.id, e.image, e.mask) for e in data.val]
    manifest = read_manifest(path)  # the held-out rows: the val split, or train rows set aside when there is none
    rows = [s for split in ("val", "train") for s in manifest.split(split) if s.id in held_out]
    return list(manifest_images(rows, problems))


def scoring_order(images: list[HeldOutImage], seed: int) -> list[HeldOutImage]:
    """Corrected images first (a reader drew them: they decide), then the others; each group shuffled
    with the run's seed, so a budget-sized share is a fair sample, not the first files by name."""
    rng = np.random.default_rng((seed, 4099))
    groups = [[i for i in images if i.review != "accepted"], [i for i in images if i.review == "accepted"]]
    return [group[k] for group in groups for k in rng.permutation(len(group))]


def prepare(run: FastRun, data_path) -> None:
    run.loaded, run.parent = load_parent(run.config.from_model)
    run.say(f"continuing from {run.parent.name} {run.parent.version} ({run.parent.precision}), "
            f"{choose_profile(run.config, run.loaded.module)} profile")
    run.data = load_train_data(data_path, run.loaded.image_size, run.config)
    for problem in run.data.problems:
        run.say(f"warning: {problem}")
    if not run.data.train:
        raise ValueError(f"{data_path}: no usable training images (split 'train')")
    if not run.data.val:  # no val split: hold out a share of train (never trained on, only compared)
        if len(run.data.train) < 2:
            raise ValueError(f"{data_path}: needs at least 2 reviewed images (one is held out to compare models)")
        count = max(1, round(len(run.data.train) * NO_VAL_HELDOUT_SHARE))
        run.data.val, run.data.train = run.data.train[-count:], run.data.train[:-count]
        run.heldout_source = f"{count} train images held out (the data has no val split)"
        run.say(f"no val split: {count} of the training images held out to compare the models")
    if Path(data_path).is_dir() and run.heldout_source == "the val split":
        run.heldout_source = "the store's validation share"
    run.selection, run.selection_source = selection_split(run.data)
    problems: list[str] = []
    run.heldout = scoring_order(heldout_images(data_path, run.data, problems), run.config.seed)
    for problem in problems:
        run.say(f"warning: {problem}")
    if not run.heldout:
        raise ValueError(f"{data_path}: no readable held-out image to compare the models on")


def selection_split(data) -> tuple[list, str]:
    """Epochs are chosen on a slice of the training images, so the held-out images that decide
    activation play no part in training or selection. Tiny sets (fewer than 6) select on held-out."""
    if len(data.train) < MIN_TRAIN_TO_SPLIT:
        return data.val, "held-out images (too few training images to set some aside)"
    count = max(1, round(len(data.train) * SELECTION_SHARE))
    selection, data.train = data.train[-count:], data.train[:-count]
    return selection, f"{count} of the training images, set aside"


def measure(run: FastRun, decoder: PromptDecoder, val_cache, baseline_seconds: float, baseline_images: int) -> Measurements:
    """Step times of this machine, on throw-away copies prepared exactly as they will train."""
    config = run.config
    timing_set = CachedEmbeddingDataset(val_cache, train=True, seed=config.seed)
    trial = copy.deepcopy(decoder)
    add_adapters(trial, decoder_adapter_config(config), total_steps=100)
    stage1_step = seconds_per_step(trial, timing_set, config.batch_size, config.device)
    trial = copy.deepcopy(decoder)
    prepare_qat(trial, qat_policy_of(run.parent))
    trial.requires_grad_(True)
    qat_batch = qat_batch_size(config)  # per image as at the full batch, so the plan's epochs stay comparable
    stage2_step = seconds_per_step(trial, timing_set, qat_batch, config.device) * config.batch_size / qat_batch
    del trial
    return Measurements(
        setup_s=run.elapsed(),
        encode_s_per_image=val_cache.seconds / max(1, len(val_cache)),
        eval_s_per_image=baseline_seconds / max(1, baseline_images),
        stage1_step_s=stage1_step,
        stage2_step_s=stage2_step,
    )


def continued_profile(config) -> str:
    """``tail`` or ``decoder``: which part of the parent trains (``config.resolve_profile``)."""
    return resolve_profile(config)


def choose_profile(config, module) -> str:
    """``auto`` continues with the tail profile where the backbone splits (LiteMedSAM), else the decoder
    profile; an explicit ``--profile tail`` on another backbone is refused with a one-line message."""
    try:
        check_splittable(module)
    except TailProfileUnsupported:
        if config.profile == "tail":
            raise
        config.profile = "decoder"
    return continued_profile(config)


def decoder_adapter_config(config) -> AdapterConfig:
    """The adapter policy of the profile: ``decoder`` (mask decoder) or ``tail`` (+ last encoder stage)."""
    adapters = copy.copy(config.stage1.adapters)
    adapters.policy = continued_profile(config)
    return adapters


def trainable_part(config, segmenter) -> torch.nn.Module:
    """The modules the run trains over its cache; they share the segmenter's weights."""
    return TailDecoder(segmenter) if continued_profile(config) == "tail" else PromptDecoder(segmenter)


def cache_encoder(config, loaded):
    """What each augmented view is encoded with once: the parent's whole encoder, or its head (tail)."""
    return head_encoder(loaded.module) if continued_profile(config) == "tail" else loaded.module.encode


def qat_policy_of(parent: ParentModel) -> str:
    policy = parent.card.int8_policy if parent.card else "merged"
    return policy if policy in ("paper", "merged") else "merged"


def timed_evaluation(run: FastRun, loaded, images: list[HeldOutImage], label: str,
                     within_s: float | None = None, confidence: bool = False) -> tuple[Evaluation, float]:
    """Score ``loaded``; with ``within_s``, on as many of ``images`` (in order) as fit in that time,
    at least ``MIN_SCORED``: a budgeted run never spends its budget on scoring."""
    start = time.perf_counter()

    def fed():
        for index, image in enumerate(images):
            if within_s is not None and index >= MIN_SCORED and time.perf_counter() - start > within_s:
                return
            yield image

    evaluation = evaluate_images(loaded, fed(), "auto", run.config.device, confidence=confidence)
    seconds = time.perf_counter() - start
    dice = evaluation.summaries()["dice"].mean
    scored = len(evaluation.per_image)
    share = "" if scored == len(images) else f" of {len(images)} (the share the budget allows)"
    run.say(f"{label}: Dice {dice:.4f} on {scored}{share} held-out image(s) ({seconds:.0f} s)")
    return evaluation, seconds


def heldout_about(run: FastRun, data_path) -> dict:
    """Which data a verdict is about: the source, the held-out part and how many images were scored."""
    path = Path(data_path)
    data = f"the annotation store {path.name}" if path.is_dir() else (
        path.parent.name + "/" + path.name if path.suffix == ".csv" else path.name)
    return {"data": data, "heldout": run.heldout_source, "scored": len(run.heldout)}


def qat_batch_size(config) -> int:
    """Stage 2 of the tail profile steps at half the batch: its fake-quantised step was the run's memory
    peak (3.9 GiB resident at batch 4 on clinic-sample, measured), beyond a laptop's 4 GiB with margin."""
    return max(1, config.batch_size // 2) if continued_profile(config) == "tail" else config.batch_size


def view_share(config) -> float:
    """The share of the flexible time spent on encoding augmented views (kept per profile: the profiles'
    step costs differ ~3x, the view cost does not)."""
    return TAIL_VIEW_SHARE if continued_profile(config) == "tail" else VIEW_SHARE


def export_seconds(config) -> float:
    return EXPORT_S + (ENCODER_EXPORT_S if continued_profile(config) == "tail" else 0.0)


def scoring_seconds(config) -> float | None:
    return None if not config.time_budget_s else config.time_budget_s * SCORING_SHARE


def estimate(data_path, config, progress=None) -> FastPlan:
    """The plan a run with ``config.time_budget_s`` would follow, from a short measurement (``--estimate``)."""
    run = FastRun(config, Path("."), time.perf_counter(), progress or (lambda e: None), None)
    prepare(run, data_path)
    sample = run.heldout[:ESTIMATE_EVAL_IMAGES]
    _, seconds = timed_evaluation(run, run.loaded, sample, "timing check")
    model = trainable_float_model(run.loaded)
    val_cache = build_cache(cache_encoder(config, run.loaded), run.selection[: config.batch_size], 1)
    m = measure(run, trainable_part(config, model), val_cache, seconds, len(sample))
    m.setup_s = m.setup_s - seconds - val_cache.seconds  # the real run does these as planned phases
    scored = len(run.heldout)
    if scoring_seconds(config):  # a budgeted run scores the share of the held-out images that fits
        scored = min(scored, max(MIN_SCORED, int(scoring_seconds(config) // max(m.eval_s_per_image, 1e-6))))
    return plan_fast_run(m, len(run.data.train), len(run.selection), scored, config.batch_size,
                         config.time_budget_s, default_epochs=config.epochs, default_qat_epochs=config.qat_epochs,
                         export_s=export_seconds(config), view_share=view_share(config))


def continue_training(data_path, out_dir, config: TrainConfig, progress=None, cancel=None) -> TrainResult:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = FastRun(config, out_dir, time.perf_counter(), progress or (lambda e: None), cancel)
    (out_dir / COMPARISON_FILE).unlink(missing_ok=True)  # never report an older run's comparison
    torch.manual_seed(config.seed)
    prepare(run, data_path)
    baseline, baseline_s = timed_evaluation(run, run.loaded, run.heldout, f"active model {run.parent.name}",
                                            scoring_seconds(config))
    scored = {row["id"] for row in baseline.per_image}
    run.heldout = [image for image in run.heldout if image.id in scored]  # the new model is scored on the same
    release_freed_memory()  # full-resolution scoring leaves freed pages behind
    segmenter = trainable_float_model(run.loaded)
    decoder = trainable_part(config, segmenter)
    encode = cache_encoder(config, run.loaded)
    val_cache = build_cache(encode, run.selection, 1)
    measured = measure(run, decoder, val_cache, baseline_s, len(run.heldout))
    measured.setup_s -= baseline_s + val_cache.seconds  # spent already, but counted as their own phases
    plan = plan_fast_run(measured, len(run.data.train),
                         len(run.selection), len(run.heldout), config.batch_size, config.time_budget_s,
                         default_epochs=config.epochs, default_qat_epochs=config.qat_epochs,
                         export_s=export_seconds(config), view_share=view_share(config))
    run.say(plan.describe())
    if not plan.fits:
        raise ValueError(plan.shortfall_message(len(run.data.train)))
    encode_until = time.perf_counter() + plan.phases_s["training embeddings"] * 1.05
    train_cache = build_cache(encode, run.data.train, plan.views, config.seed,
                              should_stop=lambda: time.perf_counter() > encode_until,
                              augment_config=augment_config_of(config))
    run.say(f"{len(train_cache)} training view(s) encoded in {train_cache.seconds:.0f} s "
            f"({train_cache.nbytes / 2**20:.0f} MiB cached)")
    del run.loaded, encode  # the INT8 parent is no longer needed: its float twin trains
    release_freed_memory()
    train_set = CachedEmbeddingDataset(train_cache, True, config.seed, config.auto_prompt_probability,
                                       config.border_weight, config.shift_cells)
    val_set = CachedEmbeddingDataset(val_cache, False)
    # the plan was made from a few steps at the start; the machine's load may have changed since
    training_end = run.started + config.time_budget_s * (1 - SLACK) - plan.phases_s["export and final check"] \
        if config.time_budget_s else None
    planned = plan.to_json()
    replanned = replan(run, plan, decoder, val_cache, len(train_cache), training_end)
    stage1 = train_stage1(run, decoder, train_set, val_set, plan, stage1_deadline(plan, training_end))
    run.say(expected_gain_message(stage1, len(run.selection), run.selection_source))
    if training_end is not None:  # stage 2 gets what stage 1 left, at the step time stage 1 showed
        plan.stage2_epochs = stage2_epochs_left(plan, stage1, training_end, len(train_cache))
        replanned["stage2_epochs"] = plan.stage2_epochs
    stage2 = train_stage2(run, decoder, train_set, val_set, plan, training_end)
    card = continued_card(run, planned, replanned, stage1, stage2, len(train_cache))
    card["parameters"] = {"trainable": stage1["trainable_parameters"],
                          "total_with_adapters": sum(p.numel() for p in segmenter.parameters())
                          + stage1["total_parameters"] - sum(p.numel() for p in decoder.parameters())}
    del train_set, val_set, train_cache, val_cache  # freed before the export and the final check (peak memory)
    release_freed_memory()
    model_dir = export_int8_model_dir(segmenter, out_dir / INT8_DIR, card, qat_policy_of(run.parent))
    # the viewer runs it in ONNX Runtime, as the parent; the encoder graph is the parent's (same values)
    parent_dir = Path(run.parent.path)
    add_onnx_form_after_training(model_dir, run.say, parent_dir if parent_dir.is_dir() else None)
    new, _ = timed_evaluation(run, load_model_dir(model_dir, runtime="torch"), run.heldout,
                                "new model", confidence=True)  # the same runtime as the parent's score
    comparison = comparison_record(run.parent, baseline, new, heldout_about(run, data_path))
    calibrated = confidence_calibration(new.per_image)
    run.say(describe_calibration(calibrated))
    update_card(model_dir, {"clinic_comparison": comparison,
                            **({"confidence_calibration": calibrated} if calibrated else {})})
    (out_dir / COMPARISON_FILE).write_text(json.dumps(comparison, indent=2), encoding="utf-8")
    for checkpoint in CHECKPOINTS:
        (out_dir / checkpoint).unlink(missing_ok=True)  # a finished run is not resumed
    run.say(f"whole run {run.elapsed():.0f} s (budget {config.time_budget_s or 0:.0f} s)")
    return TrainResult({"int8": model_dir}, comparison)


def replan(run: FastRun, plan: FastPlan, decoder: PromptDecoder, val_cache, train_views: int,
           training_end: float | None) -> dict:
    """Re-measure the step times and refit both stages' epochs into the time left for training."""
    if training_end is None:
        return {}
    measured = measure(run, decoder, val_cache, 0.0, 1)
    left = max(0.0, training_end - time.perf_counter())
    plan.stage1_epochs, plan.stage2_epochs = training_epochs(
        left, measured.stage1_step_s, measured.stage2_step_s, train_views, len(val_cache), run.config.batch_size)
    plan.measured_step_s = {"stage 1": round(measured.stage1_step_s, 3), "stage 2": round(measured.stage2_step_s, 3)}
    run.say(f"training: {left:.0f} s left: stage 1 {plan.stage1_epochs} epochs, stage 2 {plan.stage2_epochs} epochs "
            f"({measured.stage1_step_s:.2f} / {measured.stage2_step_s:.2f} s per step)")
    return {"training_s": round(left, 1), "stage1_epochs": plan.stage1_epochs, "stage2_epochs": plan.stage2_epochs,
            "stage1_step_s": measured.stage1_step_s, "stage2_step_s": measured.stage2_step_s}


EXPECTED_GAIN_PREFIX = "expected gain"
PROFILE_METHODS = {
    "decoder": "clinic fine-tune, decoder profile: AdaLoRA on the mask decoder over cached parent-encoder "
               "embeddings (stage 1), INT8 QAT of the decoder (stage 2); image encoder as in the parent",
    "tail": "clinic fine-tune, tail profile: AdaLoRA on the image encoder's last block and the mask decoder, neck "
            "trained, over features cached from the parent's encoder up to that block (stage 1), INT8 QAT of "
            "that block and the decoder (stage 2); the rest of the encoder as in the parent",
}


def expected_gain_message(stage1: dict, selection_images: int, selection_source: str) -> str:
    """What stage 1 promises, before the held-out check says what it delivered: the gain on the images
    that chose the epoch (optimistic: they chose it)."""
    gain = stage1["best_val_dice"] - stage1["val_dice_before"]
    return (f"{EXPECTED_GAIN_PREFIX}: {gain:+.4f} Dice on the {selection_images} selection image(s) "
            f"({selection_source}; the held-out comparison at the end gives the real gain)")


def stage1_deadline(plan: FastPlan, training_end: float | None) -> float | None:
    """Stage 1 must leave stage 2 at least one epoch: it stops early if it runs slower than measured."""
    if training_end is None:
        return None
    share = plan.stage1_epochs / max(1, plan.stage1_epochs + plan.stage2_epochs * 1.3)
    return time.perf_counter() + (training_end - time.perf_counter()) * max(share, 0.5)


def stage2_epochs_left(plan: FastPlan, stage1: dict, training_end: float, train_views: int) -> int:
    step_ratio = plan.measured_step_s["stage 2"] / max(plan.measured_step_s["stage 1"], 1e-6)
    per_epoch = stage1["seconds"] / max(1, stage1["epochs_run"]) * step_ratio
    return max(1, int((training_end - time.perf_counter()) // max(per_epoch, 1e-6)))


def train_stage1(run: FastRun, decoder: PromptDecoder, train_set, val_set, plan: FastPlan, stop_at: float) -> dict:
    config = run.config
    steps = max(1, -(-len(train_set) // config.batch_size)) * plan.stage1_epochs
    adapters = decoder_adapter_config(config)
    wrapped = add_adapters(decoder, adapters, steps)
    trainable, total = count_parameters(decoder)
    groups = [
        {"params": adapter_parameters(decoder), "lr": config.stage1.lr_adapter, "weight_decay": 0.0},
        {"params": base_trainable_parameters(decoder), "lr": config.stage1.lr_base, "weight_decay": config.stage1.weight_decay},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
    stage1_config = copy.copy(config.stage1)
    stage1_config.adapters = adapters
    hooks = adalora_hooks(decoder, wrapped, stage1_config, config.device)
    # a few dozen clinic images overfit within a few epochs (measured): any epoch may be the best one
    hooks.eligible_for_best = lambda step: True
    loop_config = LoopConfig(epochs=plan.stage1_epochs, batch_size=config.batch_size, device=config.device,
                             seed=config.seed, stop_at=stop_at)
    loop = TrainingLoop("stage1", decoder, optimizer, train_set, val_set, loop_config,
                        run.out_dir / STAGE1_CHECKPOINT, hooks, run.emit, run.cancel)
    before, initial = loop.validate(), snapshot(decoder)
    result = loop.run()
    kept_parent = before >= result.best_val_dice  # no epoch beat the parent's decoder on the selection images
    decoder.load_state_dict(initial if kept_parent else result.best_state)
    ranks = effective_ranks(decoder)
    wrapped.merge_and_unload()  # in place: the segmenter's decoder now holds the merged weights
    for parameter in decoder.parameters():
        parameter.requires_grad = False
    return {"val_dice_before": before, "best_val_dice": max(before, result.best_val_dice),
            "best_epoch": 0 if kept_parent else result.best_epoch,
            "epochs_run": len(result.history), "seconds": round(result.seconds, 1), "history": result.history,
            "trainable_parameters": trainable, "total_parameters": total, "final_rank_pattern": ranks,
            "adapter": adapters.to_json()}


def train_stage2(run: FastRun, decoder: PromptDecoder, train_set, val_set, plan: FastPlan, stop_at: float) -> dict:
    config = run.config
    policy = qat_policy_of(run.parent)
    quantised = prepare_qat(decoder, policy)
    decoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=config.qat_lr, weight_decay=0.0)
    loop_config = LoopConfig(epochs=plan.stage2_epochs, batch_size=qat_batch_size(config), device=config.device,
                             seed=config.seed, warmup_fraction=0.0, stop_at=stop_at)
    loop = TrainingLoop("stage2", decoder, optimizer, train_set, val_set, loop_config,
                        run.out_dir / STAGE2_CHECKPOINT, StageHooks(), run.emit, run.cancel)
    before, initial = loop.validate(), snapshot(decoder)
    result = loop.run()
    kept_start = before >= result.best_val_dice  # QAT epochs did not help: quantise stage 1's decoder as it is
    decoder.load_state_dict(initial if kept_start else result.best_state)
    remove_fake_quant(decoder)
    decoder.eval()
    return {"policy": policy, "quantised_linear_layers": quantised, "lr": config.qat_lr,
            "val_dice_fake_quant_before": before, "val_dice_fake_quant_best": max(before, result.best_val_dice),
            "best_epoch": 0 if kept_start else result.best_epoch, "epochs_run": len(result.history), "seconds": round(result.seconds, 1),
            "history": result.history}


def snapshot(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def continued_name(parent: ParentModel, requested: str | None) -> str:
    if requested:
        return requested
    return parent.name if parent.name.endswith(CLINIC_SUFFIX) else parent.name + CLINIC_SUFFIX


def continued_card(run: FastRun, planned: dict, replanned: dict, stage1: dict, stage2: dict, train_views: int) -> dict:
    parent, config = run.parent, run.config
    created = utc_now()
    digest = hashlib.sha256(json.dumps([stage1["history"], stage2["history"], parent.weights_sha256, created]).encode()).hexdigest()
    keep = ("backbone", "backbone_config", "inference", "base_weights_sha256")
    return {
        **{k: v for k, v in (parent.card.to_json() if parent.card else {}).items() if k in keep},
        "backbone": parent.card.backbone if parent.card else "lite_medsam",
        "name": continued_name(parent, config.model_name),
        "version": model_version(created, digest) + "-int8",
        "created": created,
        "parent": parent.to_json(),
        "method": PROFILE_METHODS[continued_profile(config)],
        "training": {
            "profile": continued_profile(config),
            "train_images": len(run.data.train),
            "selection_images": len(run.selection),
            "selection": run.selection_source,
            "heldout_images": len(run.heldout),
            "train_views": train_views,
            "plan": planned,
            "replanned": replanned,
            "seconds": round(run.elapsed(), 1),
            "config": config.to_json(),
        },
        "adapter": {**stage1["adapter"], "final_rank_pattern": stage1["final_rank_pattern"],
                    "final_total_rank": sum(stage1["final_rank_pattern"].values())},
        "stage1": {k: v for k, v in stage1.items() if k not in ("adapter", "final_rank_pattern")},
        "qat": stage2,
        "metrics": {"val_dice_auto_model_resolution": stage2["val_dice_fake_quant_best"]},
        "versions": library_versions(),
    }
