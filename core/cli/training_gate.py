"""Register ``adaqat train`` and ``adaqat prepare`` only when they are asked for, and only where they can run.

Their options come from the training code, which imports torch; building them for every command
would load torch for ``adaqat segment`` too. So the real parsers are built only when the command line
names one of them, and on an install without torch (the reader bundle) they are placeholders that
say in one line that fine-tuning needs the annotator bundle.
"""

from __future__ import annotations

import argparse

from ..compute import torch_available, torch_missing_message
from .common import fail

TRAINING_COMMANDS = {"train": "fine-tune: stage 1 AdaLoRA, stage 2 INT8 QAT",
                     "prepare": "decode a manifest once into an example cache (.npz) for training"}
GLOBAL_FLAGS = ("-v", "--verbose", "-h", "--help")


def command_of(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is not a global flag)."""
    for word in argv:
        if word not in GLOBAL_FLAGS:
            return word
    return None


def add_parsers(sub, argv: list[str]) -> None:
    if command_of(argv) in TRAINING_COMMANDS and torch_available():
        from . import train_command

        train_command.add_parser(sub)
        return
    for name, description in TRAINING_COMMANDS.items():
        # no option prefix: every word (--data, --help, ...) is taken, so any training command line gets the message
        parser = sub.add_parser(name, help=description, add_help=False, prefix_chars="\0")
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(run=_placeholder(name))


def _placeholder(name: str):
    """Runs only without torch: with torch, naming the command builds its real parser instead."""

    def run(_args) -> int:
        return fail(torch_missing_message(f"adaqat {name} (fine-tuning)"))

    return run
