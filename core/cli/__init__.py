"""``adaqat``: the engine's command line (segment, train, evaluate, models, listen)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import evaluate_command, listen_command, models_command, segment_command, training_gate

EXIT_BROKEN_PIPE = 141  # what a shell reports for a command ended by SIGPIPE (128 + 13)
COMMANDS = (segment_command, evaluate_command, models_command, listen_command)  # train/prepare: training_gate (torch only when used)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaqat", description="Offline chest X-ray lung segmentation engine.")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
