"""Helpers of the distributed-training test that run in their own processes (kept light to import).

``python -m tests.tiny_vit_train train --backbone sam_vit_b ...`` is ``python -m core.cli train ...``
with ``sam_vit_b`` built as the tiny test ViT and nothing else changed: the same argument parsing,
trainer, DDP code and model folders, on a 3-million-parameter model (0.15 s a step on one CPU core
instead of 5 s for LiteMedSAM).
"""

import os
import sys


def mismatch_worker(rank: int, store: str, queue) -> None:
    """One of two gloo processes that disagree on a rank pattern; reports what ``agreement`` said."""
    import torch
    import torch.distributed as dist

    from core.training import distributed

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)  # no sockets from Python
    distributed.setup("cpu")
    try:
        distributed.agreement({"qkv": 4 + rank}, None, {"w": torch.zeros(2)})
        queue.put((rank, "agreed"))
    except RuntimeError as error:
        queue.put((rank, str(error)))
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    from core.models import sam_vit

    sam_vit.VARIANTS["sam_vit_b"] = sam_vit.TINY_TEST_CONFIG
    from core.cli import main

    sys.exit(main())
