"""How the engine is started: ``python -m core.cli`` from a checkout, the bundle's own executable when frozen.

A PyInstaller bundle has no Python interpreter to run ``-m core.cli``; its one executable
(``adaqat-viewer``) runs the engine instead of the viewer when its first argument is ``ENGINE_FLAG``
or when it is started under an engine name (the ``adaqat`` link beside it).
"""

from __future__ import annotations

import sys
from pathlib import Path

ENGINE_FLAG = "--engine"
ENGINE_NAMES = frozenset({"adaqat", "adaqat.exe"})


def is_frozen() -> bool:
    """True inside a PyInstaller bundle (the bootloader sets ``sys.frozen``)."""
    return bool(getattr(sys, "frozen", False))


def engine_prefix() -> list[str]:
    """The arguments that make ``sys.executable`` run the engine's command line."""
    return [ENGINE_FLAG] if is_frozen() else ["-m", "core.cli"]


def engine_command(args: list[str]) -> list[str]:
    """The full command line of an engine child process (program first)."""
    return [sys.executable, *engine_prefix(), *args]


def split_entry(argv: list[str]) -> tuple[str, list[str]]:
    """``("engine"|"viewer", arguments)`` for the bundle's entry, from ``sys.argv``."""
    if len(argv) > 1 and argv[1] == ENGINE_FLAG:
        return "engine", list(argv[2:])
    if argv and Path(argv[0]).name in ENGINE_NAMES:
        return "engine", list(argv[1:])
    return "viewer", list(argv[1:])
