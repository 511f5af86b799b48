"""``adaqat segment``: automatic lung masks for files and folders, one PNG per image."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .common import ModelLoadError, add_runtime_options, fail, open_model


def add_parser(sub) -> None:
    parser = sub.add_parser("segment", help="segment lungs automatically and write mask PNGs")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM/PNG/JPEG files or folders (recursive)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the mask PNGs (0 background, 255 lung)")
    parser.add_argument("--model", default=None, help="model name or path (default: the active model; the bundled one on a fresh install)")
    parser.add_argument("--json", action="store_true", help="print one JSON line per image")
    add_runtime_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..export.mask_png import export_mask_png
    from ..io import StudyReadError, load_study
    from ..io.model_input import model_gray
    from ..segment.predictor import Predictor

    try:
        loaded, device = open_model(args.model, args)
    except (ModelLoadError, RuntimeError) as error:
        return fail(str(error))
    files, missing = _collect(args.inputs)
    failures = len(missing)
    for line in missing:
        print(f"error: {line}", file=sys.stderr)
    if not files and not missing:
        return fail("no DICOM, PNG or JPEG files found in the given inputs", 1)
    args.out.mkdir(parents=True, exist_ok=True)
    predictor = Predictor(loaded, device=device)
    used_names: set[str] = set()
    for path in files:
        start = time.perf_counter()
        try:
            study = load_study(path)
        except StudyReadError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        for warning in study.warnings:
            print(f"warning: {path}: {warning}", file=sys.stderr)
        result = predictor.segment(model_gray(study))
        out_path = args.out / _unique_name(path, used_names)
        try:
            export_mask_png(result.mask, out_path)
        except OSError as error:
            print(f"error: {out_path}: could not write the mask ({error.strerror or error})", file=sys.stderr)
            failures += 1
            continue
        if args.json:
            record = {
                "input": str(path),
                "output": str(out_path),
                "lung_fraction": round(result.lung_fraction, 6),
                "seconds": round(time.perf_counter() - start, 4),
                "model": result.model.label,
            }
            print(json.dumps(record), flush=True)
    return 1 if failures else 0


def _collect(inputs: list[str]) -> tuple[list[Path], list[str]]:
    from ..io.discover import find_study_files

    existing = [Path(p) for p in inputs if Path(p).exists()]
    missing = [f"{p}: no such file or folder" for p in inputs if not Path(p).exists()]
    return find_study_files(existing), missing


def _unique_name(path: Path, used: set[str]) -> str:
    """``x.dcm`` -> ``x.png``; a second input with the same stem gets ``x-2.png``."""
    name, counter = f"{path.stem}.png", 2
    while name in used:
        name, counter = f"{path.stem}-{counter}.png", counter + 1
    used.add(name)
    return name
