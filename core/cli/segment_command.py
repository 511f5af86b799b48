"""``adaqat segment``: automatic lung masks for files and folders, one PNG per image.

Inputs are never written over and no two inputs share a mask name (``output_names``); a file that
cannot be read or a mask that cannot be written is one ``error:`` line and the batch goes on.
"""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

from .common import ModelLoadError, add_runtime_options, fail, open_model, say
from .output_names import plan_outputs


def add_parser(sub) -> None:
    parser = sub.add_parser("segment", help="segment lungs automatically and write mask PNGs")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM/PNG/JPEG files or folders (recursive)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the mask PNGs (0 background, 255 lung)")
    parser.add_argument("--model", default=None, help="model name or path (default: the active model; the bundled one on a fresh install)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line per image (with the mask's confidence and quality flags)")
    add_runtime_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from ..export import ExportError
    from ..export.mask_png import export_mask_png
    from ..io import StudyReadError, load_study
    from ..io.model_input import model_gray
    from ..review.measurements import measure
    from ..segment.predictor import Predictor

    problem = _out_problem(args.out)
    if problem:
        return fail(problem)
    try:
        loaded, device = open_model(args.model, args)
    except (ModelLoadError, RuntimeError) as error:
        return fail(str(error))
    files, missing = _collect(args.inputs)
    failures = len(missing)
    for line in missing:
        say("error", line)
    if not files and not missing:
        return fail("no DICOM, PNG or JPEG files found in the given inputs", 1)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return fail(f"{args.out}: could not create the output folder ({error.strerror or error}); choose a folder you can write to")
    outputs = plan_outputs(files, args.out)
    predictor = Predictor(loaded, device=device)
    for path in files:
        start = time.perf_counter()
        try:
            study = load_study(path)
        except StudyReadError as error:
            say("error", str(error))
            failures += 1
            continue
        for warning in study.warnings:
            say("warning", f"{path}: {warning}")
        result = predictor.segment(model_gray(study), assess=args.json)  # confidence and flags for the JSON
        out_path = outputs[path]
        try:
            export_mask_png(result.mask, out_path)
        except ExportError as error:  # read-only folder, a folder in the way, disk full, a name too long
            say("error", f"{path}: the mask was not written: {error}")
            failures += 1
            continue
        if args.json:
            record = {
                "input": str(path),
                "output": str(out_path),
                "lung_fraction": round(measure(result.mask, study.pixel_spacing_mm, study.patient_orientation).fraction, 6),
                "seconds": round(time.perf_counter() - start, 4),
                "model": result.model.label,
                "runtime": loaded.runtime,
                **(result.quality.as_dict() if result.quality is not None else {}),
            }
            if hasattr(loaded.module, "activation_bits"):  # the ONNX Runtime form: 7 or 8 bits by CPU
                record["activation_bits"] = loaded.module.activation_bits
            print(json.dumps(record), flush=True)
    return 1 if failures else 0


def _path_problem(path: Path) -> str:
    """'' when ``path`` exists; else why not, in words (a name over 255 bytes is not "missing")."""
    try:
        path.stat()
    except FileNotFoundError:
        return "no such file or folder"
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return "the name is too long (over 255 bytes in one part, or over the system's path limit)"
        return error.strerror or str(error)
    return ""


def _out_problem(out: Path) -> str:
    """Why ``--out`` cannot hold the masks ('' when it can, or does not exist yet)."""
    problem = _path_problem(out)
    if problem and problem != "no such file or folder":
        return f"{out}: --out cannot be used: {problem}; choose a shorter folder name"
    if not problem and not out.is_dir():
        return f"{out}: --out is a file, not a folder; give a folder for the mask PNGs"
    return ""


def _collect(inputs: list[str]) -> tuple[list[Path], list[str]]:
    from ..io.discover import find_study_files

    problems = {p: _path_problem(Path(p)) for p in inputs}
    existing = [Path(p) for p in inputs if not problems[p]]
    missing = [f"{p}: {problems[p]}" for p in inputs if problems[p]]
    return find_study_files(existing), missing
