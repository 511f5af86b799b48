"""CPU training throughput of stage 1 (AdaLoRA): images/s, s/step, peak memory, where the time goes.

Answers "can an annotator fine-tune on 100 images on a laptop in 15 minutes?" for LiteMedSAM (256 px,
pretrained) and SAM ViT-B (512 px, random init). Every configuration runs in its own subprocess so the
peak RSS (``ru_maxrss``) is that configuration's alone. A step is the trainer's full optimisation step
(``TrainingLoop._train_step`` mirrored with phase time stamps): batch assembly + augmentation, forward,
BCE+Dice + AdaLoRA orthogonality penalty, backward, grad clipping, AdamW, ``update_and_allocate``,
``zero_grad``. Real data: the first 8 train images of the cxr-lungs manifest.

Also: a torch.profiler profile of one LiteMedSAM step (forward/backward/optimizer split, top ops), the
per-stage split of the encoder and decoder (forward hooks, and gradient-arrival time stamps for the
backward), cheap speed-ups measured round-robin against the baseline inside ONE process (so a
concurrent load affects both alike: compare ratios), and the 15-minute budget estimate for 100 images.

    python benchmarks/bench_cpu_training.py [--quick] [--json-out benchmarks/results/cpu_training.json]
    # opt-in extra job, merged into an existing result: does the budget calibration
    # (core.training.budget.seconds_per_step) match the real step, and does it touch BatchNorm?
    python benchmarks/bench_cpu_training.py --reuse benchmarks/results/cpu_training.json --only "budget calibration check"
    # re-print the report of a finished (or interrupted: /tmp/bench_cpu_training.partial.json) run
    python benchmarks/bench_cpu_training.py --reuse benchmarks/results/cpu_training.json --json-out /tmp/x.json

About 20 min on the shared 2-core VM at load ~5 (another engineer's jobs), ~10 min expected when idle.

No core/ code is changed: speed-ups are applied from here (hooks, module swaps) to measure them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DATA = Path(os.environ.get("ADAQAT_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cxr-lungs" / "manifest.csv"
REFERENCE_CARDS = ROOT / "runs" / "stage1"
TRAIN_IMAGES = 8
BUDGET_S, RUN_TRAIN, RUN_VAL = 900.0, 100, 20
REFERENCE_TRAIN_IMAGES = 246  # the GPU reference run's epoch
PARTIAL = Path(tempfile.gettempdir()) / "bench_cpu_training.partial.json"  # jobs so far, for --reuse


# ------------------------------------------------------------------------------------------------
# helpers used in the workers
# ------------------------------------------------------------------------------------------------
def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def median(values):
    return statistics.median(values) if values else float("nan")


class Setup:
    """Model + adapters + optimizer + data for one configuration, built like stage 1 builds them."""

    def __init__(self, backbone: str, policy: str, batch: int, total_steps: int = 100) -> None:
        import torch

        from core.models.registry import build_backbone
        from core.models.sam_vit import VARIANTS
        from core.training.adapters import AdapterConfig, add_adapters, adapter_parameters, base_trainable_parameters
        from core.training.dataset import SegmentationDataset
        from core.training.example_loading import load_examples
        from core.io.manifest import read_manifest
        from core.training.stage1 import Stage1Config, freeze_batchnorm

        started = time.perf_counter()
        if backbone == "lite_medsam":
            self.size = 256
            self.model = build_backbone("lite_medsam", "pretrained")
        else:
            self.size = 512
            self.model = build_backbone(backbone, None, {**VARIANTS[backbone].to_json(), "image_size": self.size})
        manifest = read_manifest(DATA)
        examples, problems = load_examples(manifest.split("train")[:TRAIN_IMAGES], self.size)
        assert examples, problems
        self.dataset = SegmentationDataset(examples, train=True)
        self.stage1 = Stage1Config(adapters=AdapterConfig(policy=policy))
        self.wrapped = add_adapters(self.model, self.stage1.adapters, total_steps)
        self.model.train()
        freeze_batchnorm(self.model)
        groups = [
            {"params": adapter_parameters(self.model), "lr": self.stage1.lr_adapter, "weight_decay": 0.0},
            {"params": base_trainable_parameters(self.model), "lr": self.stage1.lr_base,
             "weight_decay": self.stage1.weight_decay},
        ]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]])
        self.batch = batch
        self.step_index = 0
        self.trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.total = sum(p.numel() for p in self.model.parameters())
        self.build_s = time.perf_counter() - started
        self.autocast = False  # bf16 autocast on CPU around forward + loss (as the loop does on CUDA)

    def make_batch(self, index: int):
        from core.training.loop import _collate

        n = len(self.dataset)
        return _collate([self.dataset[(index * self.batch + j) % n] for j in range(self.batch)])

    def loss(self, batch):
        from core.training.adapters import orthogonality_penalty
        from core.training.step import step_loss

        return step_loss(self.model, batch, self.autocast, "cpu",
                         lambda: self.stage1.adapters.orth_reg_weight * orthogonality_penalty(self.model))

    def step(self, record=None) -> dict:
        """One optimisation step: ``core.training.step.training_step``, the loop's own; returns phase times."""
        import contextlib

        import torch

        from core.training.adapters import orthogonality_penalty
        from core.training.step import training_step

        times: dict[str, float] = {}

        @contextlib.contextmanager
        def phase(name):
            label = torch.profiler.record_function(name) if record else contextlib.nullcontext()
            start = time.perf_counter()
            with label:
                yield
            times[name] = time.perf_counter() - start

        c0 = time.process_time()
        t0 = time.perf_counter()
        batch = self.make_batch(self.step_index)
        t1 = time.perf_counter()
        index = self.step_index
        value = training_step(
            self.model, self.optimizer, batch, device="cpu", amp=self.autocast, grad_clip=1.0,
            extra_loss=lambda: self.stage1.adapters.orth_reg_weight * orthogonality_penalty(self.model),
            after_step=lambda: self.wrapped.update_and_allocate(index), phase=phase)
        t5 = time.perf_counter()
        self.step_index += 1
        return {"total_s": t5 - t0, "cpu_s": time.process_time() - c0, "data_s": t1 - t0,
                "forward_s": times["forward+loss"], "backward_s": times["backward"],
                "optimizer_s": times["update"], "loss": value}


def summarise_steps(steps: list[dict], batch: int) -> dict:
    keys = [k for k in steps[0] if k.endswith("_s")]
    out = {f"median_{k}": round(median([s[k] for s in steps]), 4) for k in keys}
    out["step_s_all"] = [round(s["total_s"], 3) for s in steps]
    out["images_per_s"] = round(batch / out["median_total_s"], 4)
    return out


def encoder_inference_s_per_image(setup: Setup, repeats: int = 2) -> float:
    """Eval-mode, no-grad image-encoder forward at batch 1 (what the viewer pays per new image)."""
    import torch

    image = setup.make_batch(0)["image"][:1]
    setup.model.eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            t = time.perf_counter()
            setup.model.encode(image)
            if i:
                times.append(time.perf_counter() - t)
    setup.model.train()
    from core.training.stage1 import freeze_batchnorm

    freeze_batchnorm(setup.model)
    return median(times)


def validation_s_per_batch(setup: Setup, repeats: int = 1) -> tuple[float, float]:
    """What ``TrainingLoop.validate`` pays per batch: eval, no-grad full model + batch Dice."""
    import torch

    from core.training.losses import batch_dice

    batch = setup.make_batch(0)
    setup.model.eval()
    times, cpu = [], []
    with torch.no_grad():
        for _ in range(repeats):
            c, t = time.process_time(), time.perf_counter()
            batch_dice(setup.model(batch["image"], batch["box"]), batch["target"], batch["valid"])
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    setup.model.train()
    from core.training.stage1 import freeze_batchnorm

    freeze_batchnorm(setup.model)
    return median(times), median(cpu)


# ------------------------------------------------------------------------------------------------
# workers
# ------------------------------------------------------------------------------------------------
def worker_train(args: dict) -> dict:
    import torch

    torch.set_num_threads(args["threads"])
    rss_start = current_rss_mib()
    setup = Setup(args["backbone"], args["policy"], args["batch"])
    rss_built = current_rss_mib()
    warm = [setup.step() for _ in range(args["warmup"])]
    steps = [setup.step() for _ in range(args["steps"])]
    result = {
        **{k: args[k] for k in ("backbone", "policy", "batch", "threads")},
        "image_size": setup.size,
        "trainable_params": setup.trainable,
        "total_params": setup.total,
        "build_s": round(setup.build_s, 2),
        "warmup_step_s": [round(s["total_s"], 3) for s in warm],
        **summarise_steps(steps, args["batch"]),
        "losses": [round(s["loss"], 4) for s in steps],
        "rss_start_mib": round(rss_start, 1),
        "rss_after_build_mib": round(rss_built, 1),
        "peak_rss_training_mib": round(peak_rss_mib(), 1),
    }
    if args.get("validation"):
        wall, cpu = validation_s_per_batch(setup)
        result["validation_s_per_batch"] = round(wall, 3)
        result["validation_cpu_s_per_batch"] = round(cpu, 3)
        result["validation_batch_over_step"] = round(wall / result["median_total_s"], 3)
    result["encoder_inference_s_per_image"] = round(encoder_inference_s_per_image(setup, args.get("enc_repeats", 2)), 3)
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return result


def _stage_modules(model):
    encoder = model.image_encoder
    return [
        ("encoder.patch_embed", encoder.patch_embed),
        ("encoder.layers[0] (conv stage)", encoder.layers[0]),
        ("encoder.layers[1]", encoder.layers[1]),
        ("encoder.layers[2]", encoder.layers[2]),
        ("encoder.layers[3]", encoder.layers[3]),
        ("encoder.neck", encoder.neck),
        ("prompt_encoder", model.prompt_encoder),
        ("mask_decoder", model.mask_decoder),
    ]


def worker_profile(args: dict) -> dict:
    """One profiled LiteMedSAM step, then a hooked step for the per-stage split."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(args["threads"])
    setup = Setup("lite_medsam", args["policy"], args["batch"])
    setup.step()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        phases = setup.step(record=True)
    averages = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in averages)
    top = sorted((e for e in averages if not e.key.startswith(("forward+loss", "backward", "clip+", "update_and"))),
                 key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    top_ops = [{"op": e.key, "self_cpu_s": round(e.self_cpu_time_total / 1e6, 3),
                "share": round(e.self_cpu_time_total / total_self, 3), "calls": e.count} for e in top]
    labelled = {e.key: round(e.cpu_time_total / 1e6, 3) for e in averages
                if e.key in ("forward+loss", "backward", "update")}
    # the backward's autograd ops run outside the "backward" record_function scope: use wall phases too
    phase_split = {k: round(v, 3) for k, v in phases.items() if k.endswith("_s")}

    # --- per-stage split: forward hooks for the forward, gradient arrival stamps for the backward ---
    stamps: dict[str, list] = {}
    grad_arrival: dict[str, float] = {}
    handles = []
    stages = _stage_modules(setup.model)
    for name, module in stages:
        def pre(m, inputs, name=name):
            stamps.setdefault(name, [None, None])[0] = time.perf_counter()

        def post(m, inputs, output, name=name):
            stamps[name][1] = time.perf_counter()
            tensor = output[0] if isinstance(output, tuple) else output
            stamps[name].append(bool(getattr(tensor, "requires_grad", False)))
            if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
                tensor.register_hook(lambda g, name=name: grad_arrival.__setitem__(name, time.perf_counter()))

        handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    batch = setup.make_batch(setup.step_index)
    t0 = time.perf_counter()
    loss = setup.loss(batch)
    t1 = time.perf_counter()
    loss.backward()
    t2 = time.perf_counter()
    setup.optimizer.zero_grad(set_to_none=True)
    for h in handles:
        h.remove()
    forward = {name: round(stamps[name][1] - stamps[name][0], 3) for name, _ in stages}
    forward["loss + orthogonality penalty + glue"] = round((t1 - t0) - sum(forward.values()), 3)
    requires_grad = {name: stamps[name][2] for name, _ in stages}
    # backward runs decoder -> neck -> layers[3] -> ... ; a stage's backward ends when the gradient of
    # its input (= the previous stage's output) arrives. Stages whose output needs no grad get none.
    chain = ["encoder.neck", "encoder.layers[3]", "encoder.layers[2]", "encoder.layers[1]",
             "encoder.layers[0] (conv stage)", "encoder.patch_embed"]
    arrivals = [("loss + mask_decoder + prompt_encoder", t1)] + [(n, grad_arrival[n]) for n in chain if n in grad_arrival]
    backward = {}
    for (label, start), nxt in zip(arrivals, arrivals[1:] + [(None, t2)]):
        backward[label] = round(nxt[1] - start, 3)
    grad_arrival_rel = {n: round(v - t1, 3) for n, v in sorted(grad_arrival.items(), key=lambda kv: kv[1])}
    return {
        "policy": args["policy"], "batch": args["batch"], "threads": args["threads"],
        "profiled_step_phases_s": phase_split,
        "profiler_labelled_cpu_s": labelled,
        "profiler_self_cpu_total_s": round(total_self / 1e6, 3),
        "top_ops_by_self_cpu": top_ops,
        "stage_forward_s": forward,
        "stage_forward_total_s": round(t1 - t0, 3),
        "stage_output_requires_grad": requires_grad,
        "stage_backward_s": backward,
        "backward_grad_arrival_since_start_s": grad_arrival_rel,
        "stage_backward_total_s": round(t2 - t1, 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def bf16_wrapper(module):
    """``module`` run under CPU bf16 autocast, its output handed on in fp32."""
    import torch
    from torch import nn

    class Bf16(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.inner(x).float()

    return Bf16(module)


class Variants:
    """Speed-ups applied from outside core/, each switchable on and off in one process."""

    def __init__(self, setup: Setup) -> None:
        import torch

        self.setup = setup
        self.torch = torch
        encoder = setup.model.image_encoder
        self.encoder = encoder
        # (c) stem (patch_embed + layers[0]) under no_grad
        self._grad_state = []
        self.stem_no_grad = False
        encoder.patch_embed.register_forward_pre_hook(self._stem_enter)
        encoder.layers[0].register_forward_hook(self._stem_exit)
        # (b) channels_last input for the conv stage
        self.channels_last = False
        encoder.register_forward_pre_hook(self._cl_input)
        # fold frozen BatchNorm into its conv (Conv2d_BN.fuse) in the image encoder
        self.fused_pairs = []
        for parent in encoder.modules():
            for child_name, child in parent.named_children():
                if type(child).__name__ == "Conv2d_BN":
                    fused = child.fuse()
                    for p in fused.parameters():
                        p.requires_grad_(False)
                    self.fused_pairs.append((parent, child_name, child, fused))
        # bf16 autocast on the frozen, no-grad stem only (its output goes on in fp32: no gradient
        # passes through it, so only the features' rounding changes)
        self.stem = (encoder.patch_embed, encoder.layers[0])
        self.stem_bf16 = (bf16_wrapper(encoder.patch_embed), bf16_wrapper(encoder.layers[0]))

    def _stem_enter(self, module, inputs):
        if self.stem_no_grad:
            self._grad_state.append(self.torch.is_grad_enabled())
            self.torch.set_grad_enabled(False)

    def _stem_exit(self, module, inputs, output):
        if self.stem_no_grad and self._grad_state:
            self.torch.set_grad_enabled(self._grad_state.pop())

    def _cl_input(self, module, inputs):
        if self.channels_last:
            return (inputs[0].contiguous(memory_format=self.torch.channels_last),) + tuple(inputs[1:])
        return None

    def set(self, name: str) -> None:
        torch = self.torch
        options = set(name.split("+")) if name != "baseline" else set()
        torch.set_num_threads(1 if "threads1" in options else 2)
        self.stem_no_grad = "stem_no_grad" in options
        self.setup.autocast = "bf16_autocast" in options
        want_cl = "channels_last" in options
        if want_cl != self.channels_last:
            self.setup.model.to(memory_format=torch.channels_last if want_cl else torch.contiguous_format)
            self.channels_last = want_cl
        encoder = self.encoder
        encoder.patch_embed, encoder.layers[0] = self.stem_bf16 if "bf16_stem" in options else self.stem
        want_fused = "fuse_bn" in options
        for parent, child_name, original, fused in self.fused_pairs:
            setattr(parent, child_name, fused if want_fused else original)


# stem_no_grad is not timed by default: the probe below shows autograd already skips the stem
SPEEDUP_VARIANTS = ["baseline", "threads1", "channels_last", "fuse_bn", "bf16_stem", "bf16_autocast"]


def worker_speedups(args: dict) -> dict:
    import torch

    torch.set_num_threads(2)
    setup = Setup("lite_medsam", "everywhere", args["batch"])
    variants = Variants(setup)
    names = args.get("variants", SPEEDUP_VARIANTS)

    # (c) does autograd already skip the stem? (no trainable parameter, input without grad)
    probe = {}
    h = setup.model.image_encoder.layers[0].register_forward_hook(
        lambda m, i, o: probe.update(requires_grad=o.requires_grad, grad_fn=str(o.grad_fn)))
    # (e) accuracy of bf16 autocast: same weights, same batch, loss and gradient vs fp32
    batch = setup.make_batch(0)
    grads = {}
    losses = {}
    for mode in ("fp32", "bf16"):
        setup.autocast = mode == "bf16"
        loss = setup.loss(batch)
        loss.backward()
        losses[mode] = float(loss.detach())
        grads[mode] = torch.cat([p.grad.flatten().float() for p in setup.model.parameters()
                                 if p.requires_grad and p.grad is not None])
        setup.optimizer.zero_grad(set_to_none=True)
    h.remove()
    setup.autocast = False
    g32, g16 = grads["fp32"], grads["bf16"]
    bf16_check = {
        "loss_fp32": round(losses["fp32"], 5), "loss_bf16": round(losses["bf16"], 5),
        "loss_rel_diff": round(abs(losses["bf16"] - losses["fp32"]) / abs(losses["fp32"]), 5),
        "grad_cosine": round(float(torch.nn.functional.cosine_similarity(g32, g16, dim=0)), 5),
        "grad_norm_ratio": round(float(g16.norm() / g32.norm()), 5),
    }
    # fused BN must give the same output (frozen BN): check once
    with torch.no_grad():
        setup.model.eval()
        x = setup.model.normalize(batch["image"][:1])
        ref = setup.model.image_encoder.layers[0](setup.model.image_encoder.patch_embed(x))
        variants.set("fuse_bn")
        fused_out = setup.model.image_encoder.layers[0](setup.model.image_encoder.patch_embed(x))
        variants.set("baseline")
        fuse_err = float((ref - fused_out).abs().max() / ref.abs().max())
        setup.model.train()
        from core.training.stage1 import freeze_batchnorm

        freeze_batchnorm(setup.model)

    # warm-up every variant once (new oneDNN primitives for channels_last / bf16 / fused convs)
    warm = {}
    for name in names:
        variants.set(name)
        warm[name] = round(setup.step()["total_s"], 3)
    # round-robin: each round times every variant once, so load drift hits them alike
    times: dict[str, list[dict]] = {n: [] for n in names}
    loads = [os.getloadavg()[0]]
    for r in range(args["rounds"]):
        order = names if r % 2 == 0 else list(reversed(names))
        for name in order:
            variants.set(name)
            times[name].append(setup.step())
        loads.append(os.getloadavg()[0])
    variants.set("baseline")
    base = median([s["total_s"] for s in times["baseline"]])
    table = {}
    for name in names:
        med = median([s["total_s"] for s in times[name]])
        table[name] = {
            "step_s_all": [round(s["total_s"], 3) for s in times[name]],
            "median_step_s": round(med, 3),
            "median_cpu_s": round(median([s["cpu_s"] for s in times[name]]), 3),
            "median_forward_s": round(median([s["forward_s"] for s in times[name]]), 3),
            "median_backward_s": round(median([s["backward_s"] for s in times[name]]), 3),
            "images_per_s": round(args["batch"] / med, 4),
            "speedup_vs_baseline": round(base / med, 3),
            "warmup_step_s": warm[name],
        }
    return {"batch": args["batch"], "rounds": args["rounds"], "variants": table,
            "stem_autograd_probe": probe, "bf16_accuracy": bf16_check,
            "fuse_bn_max_rel_error": fuse_err, "load1_during": loads, "peak_rss_mib": round(peak_rss_mib(), 1)}


def worker_compile(args: dict) -> dict:
    """(d) torch.compile of the frozen stem (forward only, as in training): compile time and gain."""
    import torch

    torch.set_num_threads(2)
    setup = Setup("lite_medsam", "everywhere", args["batch"])
    encoder = setup.model.image_encoder
    x = setup.model.normalize(setup.make_batch(0)["image"])

    def stem():
        return encoder.layers[0](encoder.patch_embed(x))

    eager = []
    for i in range(3):
        t = time.perf_counter()
        stem()
        if i:
            eager.append(time.perf_counter() - t)
    patch_embed, layer0 = encoder.patch_embed, encoder.layers[0]
    encoder.patch_embed = torch.compile(patch_embed)
    encoder.layers[0] = torch.compile(layer0)
    t = time.perf_counter()
    stem()
    compile_s = time.perf_counter() - t
    compiled = []
    for _ in range(2):
        t = time.perf_counter()
        stem()
        compiled.append(time.perf_counter() - t)
    return {"batch": args["batch"], "stem_eager_s": [round(v, 3) for v in eager],
            "compile_first_call_s": round(compile_s, 1), "stem_compiled_s": [round(v, 3) for v in compiled],
            "stem_speedup": round(median(eager) / median(compiled), 3), "peak_rss_mib": round(peak_rss_mib(), 1)}


def worker_calibration(args: dict) -> dict:
    """core.training.budget.seconds_per_step as run_stage1 calls it (plain model, before adapters):
    does it change the frozen BatchNorm statistics, and how does its estimate compare with the step
    that actually trains (adapters added, BN frozen)? Interleaved, same process."""
    import torch

    from core.models.registry import build_backbone
    from core.training.budget import seconds_per_step
    from core.training.stage1 import freeze_batchnorm

    torch.set_num_threads(2)
    setup = Setup("lite_medsam", "everywhere", args["batch"])
    plain = build_backbone("lite_medsam", "pretrained")
    before = {k: v.clone() for k, v in plain.state_dict().items() if "running_" in k}

    class FrozenBN(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def train(self, mode=True):
            self.inner.train(mode)
            freeze_batchnorm(self.inner)
            return self

        def forward(self, *a):
            return self.inner(*a)

    adapted = FrozenBN(setup.model)
    timings = {"plain_as_core_calibrates": [], "adapted_bn_frozen": []}
    for _ in range(args["rounds"]):
        for name, model in (("plain_as_core_calibrates", plain), ("adapted_bn_frozen", adapted)):
            timings[name].append(round(seconds_per_step(model, setup.dataset, args["batch"], "cpu"), 3))
            if name == "plain_as_core_calibrates" and "bn" not in timings:
                after = plain.state_dict()
                changed = [k for k in before if not torch.equal(before[k], after[k])]
                timings["bn"] = {"buffers": len(before), "changed": len(changed), "max_rel_change": round(max(
                    (float((before[k] - after[k]).abs().max() / before[k].abs().max().clamp_min(1e-12)) for k in changed),
                    default=0.0), 3)}
    bn = timings.pop("bn")
    ratio = median(timings["plain_as_core_calibrates"]) / median(timings["adapted_bn_frozen"])
    return {"batch": args["batch"], "seconds_per_step": timings, "calibration_over_actual": round(ratio, 3),
            "bn_running_stats_after_one_calibration": bn,
            "trainable_params_during_calibration": sum(p.numel() for p in plain.parameters() if p.requires_grad)}


WORKERS = {"calibration": worker_calibration, "train": worker_train, "profile": worker_profile, "speedups": worker_speedups, "compile": worker_compile}


# ------------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------------
def run_job(name: str, kind: str, args: dict, threads: int, timeout: float) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--args", json.dumps(args),
               "--worker-out", str(out)]
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(f"[{time.strftime('%H:%M:%S')}] {name} ... (load {load_before[0]:.2f})", flush=True)
    try:
        proc = subprocess.run(command, cwd=ROOT, env=env, timeout=timeout, capture_output=True, text=True)
        if proc.returncode != 0:
            result = {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"}
        else:
            result = json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        result = {"error": f"skipped: did not finish within {timeout:.0f} s"}
    finally:
        out.unlink(missing_ok=True)
    result["job"] = name
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["load_before"] = [round(v, 2) for v in load_before]
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    print(f"    done in {result['wall_s']} s" + (f"  ERROR {result['error'][:300]}" if "error" in result else ""),
          flush=True)
    return result


def machine() -> dict:
    import torch

    model_name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                       if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), [])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model_name,
        "bf16_relevant_flags": sorted(f for f in flags if f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2")),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_bf16_supported": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def reference_dice(passes: float) -> dict:
    """Val Dice of the GPU reference runs after ``passes`` image-passes (246-image epochs, batch 16)."""
    out = {}
    for policy in ("everywhere", "paper"):
        path = REFERENCE_CARDS / f"card_{policy}.json"
        if not path.is_file():
            continue
        history = json.loads(path.read_text())["training"]["history"]
        epochs_equiv = passes / REFERENCE_TRAIN_IMAGES
        whole = int(math.floor(epochs_equiv))
        passes_to = {}
        for target in (0.90, 0.95):
            first = next((h["epoch"] for h in history if h["val_dice"] >= target), None)
            passes_to[f"{target}"] = None if first is None else first * REFERENCE_TRAIN_IMAGES
        out[policy] = {
            "reference_epochs_equivalent": round(epochs_equiv, 2),
            "val_dice_at_completed_reference_epoch": (history[whole - 1]["val_dice"] if whole >= 1 else None),
            "val_dice_after_first_reference_epoch": history[0]["val_dice"],
            "image_passes_to_reach_dice": passes_to,
            "note": ("fewer passes than one reference epoch: Dice below the epoch-1 value" if whole < 1 else
                     f"after {whole} reference epoch(s) = {whole * REFERENCE_TRAIN_IMAGES} passes"),
        }
    return out


def required_throughput(batch: int = 4) -> list[dict]:
    """Inverse of epochs_within: the step time at which the reference's passes-to-Dice fit in 15 min."""
    rows = []
    steps = math.ceil(RUN_TRAIN / batch) + math.ceil(RUN_VAL / batch) / 3.0
    for policy, info in reference_dice(0).items():
        for dice, passes in info["image_passes_to_reach_dice"].items():
            if passes is None:
                continue
            epochs = math.ceil(passes / RUN_TRAIN)
            step_s = BUDGET_S / (epochs * steps * 1.1)
            rows.append({"policy": policy, "dice": dice, "image_passes": passes, "epochs_of_100": epochs,
                         "max_step_s_batch4": round(step_s, 2), "images_per_s": round(batch / step_s, 2)})
    return rows


def budget_estimate(step_s: float, val_batch_s: float | None, batch: int, label: str) -> dict:
    from core.training.budget import epochs_within

    epochs = epochs_within(BUDGET_S, step_s, RUN_TRAIN, RUN_VAL, batch, max_epochs=1000)
    steps = math.ceil(RUN_TRAIN / batch)
    val_batches = math.ceil(RUN_VAL / batch)
    one_epoch_model = step_s * (steps + val_batches / 3.0) * 1.1
    measured_epoch = steps * step_s + (val_batches * val_batch_s if val_batch_s else 0.0)
    passes = epochs * RUN_TRAIN
    return {
        "label": label,
        "step_s": round(step_s, 3),
        "images_per_s": round(batch / step_s, 4),
        "epochs_within_900s": epochs,
        "image_passes": passes,
        "epoch_s_budget_model": round(one_epoch_model, 1),
        "epoch_s_measured_train_plus_val": round(measured_epoch, 1),
        "one_epoch_wall_min": round(measured_epoch / 60, 1),
        "reference_dice": reference_dice(passes),
    }


def fmt(value, digits=2):
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke test)")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds of the speed-up variants")
    parser.add_argument("--skip", nargs="*", default=[], help="job names to skip")
    parser.add_argument("--only", nargs="*", default=[],
                        help="run only these jobs (with --reuse: merged into that JSON), e.g. 'budget calibration check'")
    parser.add_argument("--reuse", type=Path, help=f"re-render the report from a JSON (e.g. {PARTIAL})")
    parser.add_argument("--json-out", type=Path, default=ROOT / "benchmarks" / "results" / "cpu_training.json")
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](json.loads(args.args))
        Path(args.worker_out).write_text(json.dumps(result))
        return

    started = time.perf_counter()
    load_start = os.getloadavg()
    steps_lite, steps_vit = (2, 1) if args.quick else (5, 3)
    rounds = 1 if args.quick else args.rounds
    jobs = [
        ("lite_medsam/everywhere/t2", "train", {"backbone": "lite_medsam", "policy": "everywhere", "batch": 4,
                                                "threads": 2, "warmup": 1, "steps": steps_lite, "validation": True}, 2, 600),
        ("lite_medsam/everywhere/t1", "train", {"backbone": "lite_medsam", "policy": "everywhere", "batch": 4,
                                                "threads": 1, "warmup": 1, "steps": steps_lite, "enc_repeats": 1,
                                                "validation": True}, 1, 600),
        ("lite_medsam/paper/t2", "train", {"backbone": "lite_medsam", "policy": "paper", "batch": 4,
                                           "threads": 2, "warmup": 1, "steps": steps_lite, "enc_repeats": 1}, 2, 600),
        ("sam_vit_b@512/everywhere/t2", "train", {"backbone": "sam_vit_b", "policy": "everywhere", "batch": 2,
                                                  "threads": 2, "warmup": 1, "steps": steps_vit, "enc_repeats": 1}, 2, 600),
        ("profile lite_medsam/everywhere", "profile", {"policy": "everywhere", "batch": 4, "threads": 2}, 2, 400),
        ("speed-ups (round-robin)", "speedups", {"batch": 2, "rounds": rounds}, 2, 900),
        ("torch.compile stem", "compile", {"batch": 4}, 2, 150),
        ("budget calibration check", "calibration", {"batch": 2, "rounds": 2}, 2, 400),  # opt-in: --only
    ]
    default_jobs = [j[0] for j in jobs if j[1] != "calibration"]
    results = {}
    command = " ".join([Path(sys.executable).name, *sys.argv])
    merged = []
    if args.reuse:  # re-render the report from a finished or partial run, without running anything
        prior = json.loads(args.reuse.read_text())
        results, load_start, command = prior["jobs"], tuple(prior["load_average_start"]), prior["command"]
        merged = prior.get("merged_commands", []) + ([" ".join([Path(sys.executable).name, *sys.argv])] if args.only else [])
        started -= prior.get("total_wall_s", 0.0)
    for name, kind, job_args, threads, timeout in jobs:
        if name in args.skip or (args.only and name not in args.only) or (not args.only and name not in default_jobs):
            continue
        if args.reuse and not args.only:
            continue
        results[name] = run_job(name, kind, job_args, threads, timeout)
        PARTIAL.write_text(json.dumps({"command": command, "load_average_start": load_start, "jobs": results,
                                       "total_wall_s": round(time.perf_counter() - started, 1)}))

    # ---------------- report ----------------
    train_rows = {k: v for k, v in results.items() if k.startswith(("lite", "sam")) and "error" not in v}
    print("\nTraining throughput (full optimisation step; median of timed steps after 1 warm-up)")
    header = f"{'config':30} {'thr':>3} {'bs':>3} {'s/step':>7} {'cpu s':>6} {'img/s':>6} {'fwd':>6} {'bwd':>6} {'opt+upd':>7} " \
             f"{'peakMiB':>8} {'enc s/img':>9} {'load':>10}"
    print(header)
    for name, r in train_rows.items():
        print(f"{name:30} {r['threads']:>3} {r['batch']:>3} {r['median_total_s']:7.2f} {r['median_cpu_s']:6.2f} {r['images_per_s']:6.3f} "
              f"{r['median_forward_s']:6.2f} {r['median_backward_s']:6.2f} "
              f"{r['median_optimizer_s']:7.2f} {r['peak_rss_training_mib']:8.0f} "
              f"{r['encoder_inference_s_per_image']:9.2f} {r['load_before'][0]:4.1f}->{r['load_after'][0]:4.1f}")
    prof = results.get("profile lite_medsam/everywhere", {})
    if "error" not in prof and prof:
        print("\nProfile of one LiteMedSAM step (everywhere, batch 4, 2 threads):", prof["profiled_step_phases_s"])
        print("  forward by stage (s):", prof["stage_forward_s"])
        print("  backward by stage (s):", prof["stage_backward_s"])
        print("  stage output requires_grad:", prof["stage_output_requires_grad"])
        print("  top ops by self CPU:")
        for op in prof["top_ops_by_self_cpu"]:
            print(f"    {op['op']:40} {op['self_cpu_s']:7.2f} s {op['share'] * 100:5.1f} %  x{op['calls']}")
    speed = results.get("speed-ups (round-robin)", {})
    if "error" not in speed and speed:
        print(f"\nSpeed-ups, LiteMedSAM everywhere batch {speed['batch']}, round-robin in one process ({speed['rounds']} rounds):")
        for name, v in speed["variants"].items():
            print(f"  {name:28} {v['median_step_s']:7.2f} s/step (cpu {v['median_cpu_s']:6.2f} s)  {v['images_per_s']:6.3f} img/s  "
                  f"x{v['speedup_vs_baseline']:.2f}  (fwd {v['median_forward_s']:.2f}, bwd {v['median_backward_s']:.2f})")
        print("  stem autograd probe:", speed["stem_autograd_probe"], " bf16 check:", speed["bf16_accuracy"])
    comp = results.get("torch.compile stem", {})
    if comp:
        print("\ntorch.compile (stem):", {k: v for k, v in comp.items() if k not in ("load_before", "load_after")})

    estimates = []
    base = train_rows.get("lite_medsam/everywhere/t2")
    if base:
        val_s = base.get("validation_s_per_batch")
        estimates.append(budget_estimate(base["median_total_s"], val_s, 4, "LiteMedSAM everywhere, as is (2 threads)"))
        paper = train_rows.get("lite_medsam/paper/t2")
        if paper:
            estimates.append(budget_estimate(paper["median_total_s"], val_s, 4, "LiteMedSAM paper, as is (2 threads)"))
        if speed and "error" not in speed:
            for name, v in speed["variants"].items():
                ratio = v["speedup_vs_baseline"]
                if name != "baseline" and ratio > 1.05:
                    estimates.append(budget_estimate(base["median_total_s"] / ratio, (val_s or 0) / ratio, 4,
                                                     f"LiteMedSAM everywhere with '{name}' (x{ratio:.2f}, round-robin)"))
        single = train_rows.get("lite_medsam/everywhere/t1")
        if single:  # CPU time of the 1-thread run ~ the step time on one idle core (load-independent)
            estimates.append(budget_estimate(single["median_cpu_s"], single.get("validation_cpu_s_per_batch"), 4,
                                             "LiteMedSAM everywhere on ONE idle core (CPU time of the 1-thread run)"))
    vit = train_rows.get("sam_vit_b@512/everywhere/t2")
    if vit:
        estimates.append(budget_estimate(vit["median_total_s"], None, 2, "SAM ViT-B 512 px everywhere (2 threads)"))
    calib = results.get("budget calibration check", {})
    if calib and "error" not in calib:
        print("\nBudget calibration (core.training.budget.seconds_per_step as run_stage1 calls it):",
              calib["seconds_per_step"], f"-> overestimates the real step x{calib['calibration_over_actual']};",
              "BN running stats changed:", calib["bn_running_stats_after_one_calibration"])
    required = required_throughput()
    print("Throughput an annotator run needs to reach the GPU reference's Dice in 15 min (same image-passes):")
    for r in required:
        print(f"  {r['policy']:10} Dice >= {r['dice']}: {r['image_passes']} passes -> step <= {r['max_step_s_batch4']} s "
              f"at batch 4 = {r['images_per_s']} img/s")
    print(f"\nAnnotator run: {RUN_TRAIN} train + {RUN_VAL} val images, {BUDGET_S:.0f} s budget "
          "(core.training.budget.epochs_within with the measured full step time)")
    for e in estimates:
        ref = e["reference_dice"].get("everywhere", {})
        print(f"  {e['label']:60} {e['images_per_s']:.3f} img/s  1 epoch ~{e['one_epoch_wall_min']} min  "
              f"-> {e['epochs_within_900s']} epoch(s) = {e['image_passes']} passes "
              f"(= {ref.get('reference_epochs_equivalent')} GPU epochs; {ref.get('note')})")

    out = {
        "command": command,
        "merged_commands": merged,
        "machine": machine(),
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "total_wall_s": round(time.perf_counter() - started, 1),
        "data": {"manifest": str(DATA), "train_images_used": TRAIN_IMAGES, "augment": True},
        "note": ("Timings on a shared 2-core VM: a concurrent process may run (see the load averages per job). "
                 "Absolute times scale with the load; compare ratios inside one job (the speed-up table is "
                 "round-robin in one process)."),
        "jobs": results,
        "annotator_run_estimates": estimates,
        "required_throughput_for_reference_dice": required,
    }
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.json_out} in {out['total_wall_s']} s")


if __name__ == "__main__":
    main()
