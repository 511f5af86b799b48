"""Entry point: ``adaqat-viewer [FILES...] [--demo] [--screenshot PATH] [--model NAME_OR_PATH] [--store DIR]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="adaqat-viewer", description="Chest X-ray lung segmentation viewer")
    parser.add_argument("files", nargs="*", help="DICOM, PNG or JPEG files or folders to open")
    parser.add_argument("--demo", action="store_true", help="open the bundled sample studies")
    parser.add_argument("--screenshot", metavar="PATH", help="save the window once the first mask is shown, then exit")
    parser.add_argument("--model", metavar="NAME_OR_PATH", help="model to use instead of the one in Settings")
    parser.add_argument("--store", metavar="DIR", help="annotation store folder instead of the one in Settings")
    parser.add_argument("--timeout", type=float, default=120.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def demo_files() -> list[str]:
    from core.paths import sample_studies_dir

    folder = sample_studies_dir()
    return [str(folder)] if folder.is_dir() and any(folder.iterdir()) else []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.screenshot and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from PySide6.QtWidgets import QApplication

    from .excepthook import install_excepthook
    from .main_window import MainWindow
    from .services.settings import APPLICATION, ORGANIZATION
    from .theme import apply_dark_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    apply_dark_theme(app)

    files = list(args.files)
    if args.demo:
        samples = demo_files()
        if samples:
            files += samples
        else:
            print("--demo: no bundled sample studies in this installation; starting with an empty worklist")
    if args.screenshot and not files:
        print("screenshot: nothing to open (give a file or --demo with bundled samples)", file=sys.stderr)
        return 2

    window = MainWindow(model_name=args.model, store_path=Path(args.store) if args.store else None)
    previous_hook = install_excepthook(window.status.message)
    taker = None
    if args.screenshot:
        from .screenshot import ScreenshotTaker

        window.resize(1600, 1000)
        taker = ScreenshotTaker(window, args.screenshot, timeout_s=args.timeout)
    window.show()
    if files:
        window.open_paths(files, activate_first=True)
    code = app.exec()
    window.close()
    sys.excepthook = previous_hook
    if taker is not None and taker.exit_code is not None:
        return taker.exit_code
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
