"""``adaqat models``: list the bundled and installed models; ``adaqat models activate NAME_OR_PATH``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..models.catalog import activate_model_dir, list_models, set_active_model
from ..models.errors import ModelLoadError
from ..models.loading import bundled_model_dirs
from .common import fail


def add_parser(sub) -> None:
    parser = sub.add_parser("models", help="list models (bundled and fine-tuned); activate one")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    actions = parser.add_subparsers(dest="action")
    activate = actions.add_parser("activate", help="make a model the active one (viewer default, --from default)")
    activate.add_argument("model", help="a bundled model's name or a model folder (a folder is installed first)")
    parser.set_defaults(run=run)


def run(args) -> int:
    if getattr(args, "action", None) == "activate":
        return run_activate(args.model)
    records, problems = list_models()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    for record in records:
        mark = "*" if record["active"] else " "
        size = f"{record['size_bytes'] / 2**20:.1f} MB" if record["size_bytes"] else "?"
        print(f"{mark} {record['name']} {record['version']} ({record['precision']}, {record['backbone']}, {size}) "
              f"{record['path']}")
    return 0


def run_activate(model: str) -> int:
    try:
        if model in bundled_model_dirs():
            set_active_model(model)
            target = model
        elif Path(model).is_dir():
            target = str(activate_model_dir(model))
        else:
            return fail(f"{model}: not a bundled model name or a model folder")
    except (ModelLoadError, OSError) as error:
        return fail(f"{model}: cannot activate ({error})")
    print(f"active model: {target}")
    return 0
