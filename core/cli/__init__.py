"""``adaqat``: the engine's command line (segment, train, evaluate, models, listen)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..errors import AdaqatError
from . import evaluate_command, listen_command, models_command, segment_command, training_gate

EXIT_BROKEN_PIPE = 141  # what a shell reports for a command ended by SIGPIPE (128 + 13)
COMMANDS = (segment_command, evaluate_command, models_command, listen_command)  # train/prepare: training_gate (torch only when used)


class _Parser(argparse.ArgumentParser):
    """argparse, plus a hint when a file whose name starts with '-' was taken for an option."""

    argv: list[str] = []

    def error(self, message: str):
        words = self.argv[: self.argv.index("--")] if "--" in self.argv else self.argv
        dashed = next((w for w in words if w.startswith("-") and len(w) > 1 and os.path.exists(w)), None)
        if dashed is not None:
            message += (f"; '{dashed}' is a file whose name starts with '-': put '--' before it "
                        f"(adaqat {' '.join(self.prog.split()[1:])} --out DIR -- {dashed})")
        super().error(message)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    _Parser.argv = sys.argv[1:] if argv is None else list(argv)
    parser = _Parser(prog="adaqat", description="Offline chest X-ray lung segmentation engine.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    training_gate.add_parsers(sub, sys.argv[1:] if argv is None else list(argv))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `adaqat segment --json ... | head`: the reader left; stop quietly, like SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return EXIT_BROKEN_PIPE
    except AdaqatError as error:  # an engine error no command caught itself: its one line, no traceback
        from .common import fail

        return fail(str(error))
    except OSError as error:  # a file-system refusal no command foresaw (read-only, name too long): one line
        from .common import fail

        where = error.filename if error.filename is not None else args.command
        return fail(f"{os.fsdecode(where) if isinstance(where, bytes) else where}: {error.strerror or error}; "
                    "check the path (a writable folder, names under 255 bytes)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
