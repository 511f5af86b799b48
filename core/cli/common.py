"""Options and error reporting shared by the subcommands."""

from __future__ import annotations

import sys

from ..compute import choose_device, set_threads
from ..models.errors import ModelLoadError
from ..models.loading import LoadedModel, load_model
from ..models.runtimes import CHOICES as RUNTIME_CHOICES
from ..safe_text import one_line


def add_runtime_options(parser) -> None:
    parser.add_argument("--device", default=None, help="cpu (default), cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch and ONNX Runtime)")
    parser.add_argument("--runtime", choices=RUNTIME_CHOICES, default="auto",
                        help="inference runtime; auto = ONNX Runtime for INT8 models that carry it (default)")


_progress_line = {"open": False}  # a progress bar's "\r" line is on screen, not yet ended


def progress_line_open(is_open: bool) -> None:
    """A progress bar says whether its updating line is unfinished, so a message never lands on it."""
    _progress_line["open"] = is_open


def say(kind: str, message: str) -> None:
    """One ``kind: message`` line on stderr, escaped so file names cannot drive the terminal.

    When a progress bar's line is open, it is ended first: the message gets a line of its own."""
    if _progress_line["open"]:
        print(file=sys.stderr)
        _progress_line["open"] = False
    print(f"{kind}: {one_line(message)}", file=sys.stderr)


def fail(message: str, status: int = 2) -> int:
    say("error", message)
    return status


def open_model(name_or_path: str | None, args) -> tuple[LoadedModel, str]:
    """Load the model named on the command line; raises ModelLoadError / RuntimeError with one-line messages."""
    from ..models.catalog import active_model

    device = choose_device(args.device)
    set_threads(args.threads)
    return load_model(name_or_path or active_model(), device=device, runtime=getattr(args, "runtime", "auto")), device


__all__ = ["ModelLoadError", "add_runtime_options", "fail", "open_model", "say"]
