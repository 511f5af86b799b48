"""Options and error reporting shared by the subcommands."""

from __future__ import annotations

import sys

from ..models.errors import ModelLoadError
from ..models.loading import LoadedModel, load_model
from ..runtime import choose_device, set_threads


def add_runtime_options(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def fail(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def open_model(name_or_path: str | None, args) -> tuple[LoadedModel, str]:
    """Load the model named on the command line; raises ModelLoadError / RuntimeError with one-line messages."""
    from ..models.catalog import active_model

    device = choose_device(args.device)
    set_threads(args.threads)
    return load_model(name_or_path or active_model(), device=device), device


__all__ = ["ModelLoadError", "add_runtime_options", "fail", "open_model"]
