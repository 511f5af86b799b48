"""Data-parallel training under ``torchrun`` (PyTorch DDP), kept in one place.

Without torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or with one process,
every helper here is a no-op and the trainer runs exactly as it always has.

Under ``torchrun --nproc_per_node=N`` each process trains on 1/N of the training images
(``DistributedSampler``) and DDP averages the gradients, so every process holds the same weights
after every step. Whatever a process would otherwise decide from local information is made
collective so that no process takes a different path (or waits forever in a collective):

- AdaLoRA's rank allocation reads the (all-reduced) gradients at the global step count, which is
  the same everywhere because every shard has the same length; ``check_identical`` verifies the
  final rank pattern across processes at the end of stage 1;
- time-budget decisions are rank 0's, broadcast; cancellation and divergence stop every process
  at the same step; validation Dice is summed over all processes' slices of the validation set;
- only rank 0 writes checkpoints, model folders and progress; the others wait at a barrier when
  they need its files.

``--batch-size`` is per process: the global batch is ``batch size x WORLD_SIZE``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


_context = Context()


def environment() -> Context:
    """What torchrun set for this process (a single process when it set nothing)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Context()
    return Context(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(device: str) -> Context:
    """Join torchrun's process group: NCCL on CUDA (one GPU per process, by LOCAL_RANK), gloo on CPU.

    ``torch.cuda.set_device`` makes plain ``"cuda"`` mean this process's GPU, so the rest of the
    trainer (and the recorded config) keeps saying ``cuda``.
    """
    global _context
    found = environment()
    if not found.enabled or _context.enabled:
        return _context
    import torch.distributed as dist

    cuda = str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(found.local_rank)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=found.rank, world_size=found.world_size)
    _context = Context(found.rank, found.world_size, found.local_rank, backend)
    return _context


def shutdown() -> None:
    """Leave the process group (torchrun expects each process to end cleanly)."""
    global _context
    if _context.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _context = Context()


def context() -> Context:
    return _context


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes files and reports progress."""
    return _context.rank == 0


def world_size() -> int:
    return _context.world_size


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if _context.backend == "nccl" else torch.device("cpu")


def barrier() -> None:
    """Wait for every process (e.g. until rank 0 has written the model the next stage reads)."""
    if _context.enabled:
        import torch.distributed as dist

        if _context.backend == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast(value):
    """Rank 0's ``value`` on every process: one decision (epochs that fit a budget, stop now) for all."""
    if not _context.enabled:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0, device=_device() if _context.backend == "nccl" else None)
    return box[0]


def _all_reduce(values: list[float], op: str = "sum") -> list[float]:
    import torch.distributed as dist

    tensor = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return tensor.cpu().tolist()


def any_rank(flag: bool) -> bool:
    """True on every process when it is true on one (a cancel request reaches one process first)."""
    if not _context.enabled:
        return bool(flag)
    return _all_reduce([1.0 if flag else 0.0], "max")[0] > 0


def mean(value: float) -> float:
    """The mean over processes (a NaN on one makes it NaN everywhere: all stop at the same step)."""
    if not _context.enabled:
        return value
    return _all_reduce([float(value)])[0] / _context.world_size


def sum_and_count(total: float, count: int) -> tuple[float, int]:
    """Validation: every process scores its slice; the sums give the same mean on all of them."""
    if not _context.enabled:
        return total, count
    total, count = _all_reduce([float(total), float(count)])
    return total, int(round(count))


def shard_length(size: int) -> int:
    """Training examples per process per epoch (DistributedSampler pads the last shard to this)."""
    return math.ceil(size / _context.world_size) if _context.enabled else size


def train_sampler(dataset, seed: int, epoch: int):
    """This process's shuffled shard for ``epoch``; the same permutation on all (seeded), disjoint slices."""
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(dataset, num_replicas=_context.world_size, rank=_context.rank, shuffle=True,
                                 seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    return sampler


def validation_indices(size: int) -> list[int]:
    """This process's validation images: every N-th, no padding, so each is scored exactly once."""
    return list(range(_context.rank, size, _context.world_size)) if _context.enabled else list(range(size))


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel (the model itself with one process).

    Built after a resume has loaded its checkpoint; DDP then broadcasts rank 0's weights once.
    ``find_unused_parameters``: some trained parameters get no gradient from a batch (prompt
    embeddings of point prompts when every prompt is a box), and DDP must not wait for them.
    """
    if not _context.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.cuda.current_device()] if _context.backend == "nccl" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def digest(value) -> str:
    """A short sha256 of a JSON-able value or of a state dict's tensors."""
    hasher = hashlib.sha256()
    if isinstance(value, dict) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
        for key in sorted(value):
            hasher.update(key.encode())
            hasher.update(value[key].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    else:
        hasher.update(json.dumps(value, sort_keys=True, default=str).encode())
    return hasher.hexdigest()[:16]


def gather_digests(value) -> list[str]:
    """Every process's ``digest(value)``, in rank order (one entry with a single process)."""
    mine = digest(value)
    if not _context.enabled:
        return [mine]
    import torch.distributed as dist

    gathered: list = [None] * _context.world_size
    dist.all_gather_object(gathered, mine)
    return [str(item) for item in gathered]


def check_identical(what: str, value) -> str:
    """Raise on every process when ``value`` differs between processes; returns the common digest.

    Used on AdaLoRA's final rank pattern: every process must have pruned the same ranks, or the
    written model (rank 0's) would not be the model the others trained.
    """
    digests = gather_digests(value)
    if len(set(digests)) > 1:
        raise RuntimeError(f"{what} differs between processes ({', '.join(digests)}); the run is inconsistent")
    return digests[0]


def agreement(ranks: dict[str, int], mask, state: dict[str, torch.Tensor]) -> str | None:
    """End of stage 1: the processes must agree on AdaLoRA's ranks (which ones were kept, too).

    Raises when they differ; returns a line for the log (None with one process). The weights'
    checksums are reported, not enforced: DDP keeps them equal, and rank 0's are the ones written.
    """
    if not _context.enabled:
        return None
    same = check_identical("the AdaLoRA rank pattern", ranks)
    if mask is not None:
        check_identical("the AdaLoRA rank mask", mask)
    weights = gather_digests(state)
    said = "identical" if len(set(weights)) == 1 else "differ (" + ", ".join(weights) + "), rank 0's are written"
    return f"rank pattern identical on {_context.world_size} processes (sha256 {same}); weights {said}"
