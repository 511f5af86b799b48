"""Whether this CPU has an int8 dot-product instruction (x86 VNNI or AMX), asked without torch.

Both INT8 routes pick their activation width from it (8 bits only where u8 x s8 products cannot
saturate). The ONNX Runtime route of a reading station has no torch, so the answer comes from the
kernel's CPU flags (``/proc/cpuinfo``: the same names torch's cpuinfo reports), and from torch only
where there is no such file and torch is installed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
CPUINFO = Path("/proc/cpuinfo")


def has_int8_dot_product() -> bool:
    """True with VNNI/AMX, unless a ``ONEDNN_MAX_CPU_ISA`` cap below VNNI emulates an older CPU (benchmarks)."""
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
    if cap and cap != "ALL" and not any(key in cap for key in ("VNNI", "AMX", "AVX10")):
        return False
    return _cpu_flags_say_dot_product()


@functools.lru_cache(maxsize=1)
def _cpu_flags_say_dot_product() -> bool:
    try:
        text = CPUINFO.read_text(errors="replace")
    except OSError:
        return _torch_says_dot_product()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return any(flag in flags for flag in DOT_PRODUCT_FLAGS)
    return _torch_says_dot_product()


def _torch_says_dot_product() -> bool:
    try:
        import torch

        caps = torch.cpu.get_capabilities()
    except (ImportError, AttributeError, RuntimeError):
        return False
    return any(bool(caps.get(flag)) for flag in DOT_PRODUCT_FLAGS)
