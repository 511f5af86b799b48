"""A small real tmpfs for full-disk tests: mounted for the test, unmounted after.

Needs root (mount); a test that cannot mount skips with the reason, as issue 29 asks.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(size: str = "4m", read_only: bool = False):
    """A fresh tmpfs of ``size`` (mount's syntax: 4m, 20m), read-only if asked; skips the test when it
    cannot be mounted."""
    point = Path(tempfile.mkdtemp(prefix="adaqat-full-disk-"))
    if os.geteuid() != 0:
        point.rmdir()
        pytest.skip("mounting a small tmpfs needs root; the full-disk case is not tested here")
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if read_only else ""), "tmpfs", str(point)], capture_output=True, text=True)
    if run.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip()[:120]}); the full-disk case is not tested")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)
        with contextlib.suppress(OSError):
            point.rmdir()
