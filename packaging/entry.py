"""The bundle's entry script: the viewer, or the engine (training child, the ``adaqat`` link)."""

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # a multiprocessing child of the frozen app runs its task, not main()
    from core.bundle import split_entry

    which, args = split_entry(sys.argv)
    if which == "engine":
        from core.cli import main as engine_main

        return engine_main(args)
    from app.main import main as viewer_main

    return viewer_main(args)


if __name__ == "__main__":
    sys.exit(main())
