"""Give freed heap memory back to the system between the phases of a training run.

A laptop run must stay within 4 GiB. Scoring full-resolution images and building feature caches free
hundreds of MiB that glibc's allocator keeps in its arenas, so the process's resident size only ratchets
up (measured: 3.4 GiB resident after scoring 15 clinic images, of which ~1.5 GiB was live). ``malloc_trim``
returns those pages; elsewhere (macOS, Windows, musl) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_freed_memory() -> None:
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
