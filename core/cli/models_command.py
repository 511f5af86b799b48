"""``adaqat models``: list, activate, roll back, rename, delete, export and import models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..models import catalog
from ..models.errors import ModelLoadError
from ..models.loading import bundled_model_dirs
from ..models.package import export_package, import_package
from ..models.signing import SigningError
from . import models_trust
from .common import fail


def add_parser(sub) -> None:
    parser = sub.add_parser("models", help="list models (bundled and fine-tuned); activate, export, import")
    parser.add_argument("--json", action="store_true", help="print the records as JSON")
    actions = parser.add_subparsers(dest="action")
    activate = actions.add_parser("activate", help="make a model the active one (viewer default, --from default)")
    activate.add_argument("model", help="a bundled model's name or a model folder (a folder is installed first)")
    actions.add_parser("rollback", help="re-activate the model that was active before the current one")
    rename = actions.add_parser("rename", help="give an installed model your own name")
    rename.add_argument("model", help="the model's folder (or its folder name under the models folder)")
    rename.add_argument("label", help="the new name")
    delete = actions.add_parser("delete", help="delete an installed model (not the bundled one, not the active one)")
    delete.add_argument("model", help="the model's folder (or its folder name under the models folder)")
    export = actions.add_parser("export", help="write a model as one verified file (.adaqat-model)")
    export.add_argument("model", help="a bundled model's name or a model folder")
    export.add_argument("out", help="the package file to write")
    export.add_argument("--sign-key", default=None, help="sign the package with this private key (.private.pem)")
    export.add_argument("--signer", default="", help="the signer's name shown to whoever imports it")
    onnx = actions.add_parser("onnx", help="add the ONNX Runtime form (encoder/decoder graphs) to an INT8 model")
    onnx.add_argument("model", help="a model folder (or an installed model's folder name)")
    imported = actions.add_parser("import", help="verify a .adaqat-model file and install the model in it")
    imported.add_argument("package", help="the package file")
    imported.add_argument("--sha256", default=None, help="the file's sha256 as printed by export (checked first)")
    imported.add_argument("--activate", action="store_true", help="make the imported model the active one")
    imported.add_argument("--allow-unsigned", action="store_true",
                          help="install even if unsigned or signed by a key this computer does not trust")
    models_trust.add_parsers(actions)
    parser.set_defaults(run=run)


def model_folder(model: str) -> Path:
    """A bundled name, a folder, or an installed folder's name -> the model folder."""
    bundled = bundled_model_dirs()
    if model in bundled:
        return bundled[model]
    if Path(model).is_dir():
        return Path(model)
    installed = catalog.user_models_dir() / model
    if installed.is_dir() and not model.startswith("."):
        return installed
    raise ValueError(f"{model}: not a bundled model name, a model folder or an installed model")


def run(args) -> int:
    action = getattr(args, "action", None)
    try:
        if action == "activate":
            return run_activate(args.model)
        if action == "rollback":
            print(f"active model: {catalog.roll_back()}")
        elif action == "rename":
            card = catalog.rename_model(model_folder(args.model), args.label)
            print(f"renamed: {card.name} {card.version} is now shown as '{card.display_name}'")
        elif action == "delete":
            folder = model_folder(args.model)
            catalog.delete_model(folder)
            print(f"deleted: {folder}")
        elif action == "export":
            written, digest = export_package(model_folder(args.model), args.out, args.sign_key, args.signer)
            print(f"exported: {written}\nsha256: {digest}")
        elif action == "onnx":
            from ..compute import require_torch

            require_torch("adding an ONNX Runtime form")
            from ..models.onnx_form_writer import add_onnx_form

            field = add_onnx_form(model_folder(args.model))
            sizes = ", ".join(f"{part} {g['bytes'] / 2**20:.1f} MB" for part, g in field["graphs"].items())
            print(f"ONNX Runtime form written ({sizes})")
        elif action == "import":
            installed = import_package(args.package, args.sha256, allow_unsigned=args.allow_unsigned)
            if args.activate:
                catalog.set_active_model(installed)
            print(f"installed: {installed}" + (" (active)" if args.activate else "")
                  + f"; {models_trust.signer_line(installed)}")
        elif models_trust.run(args, model_folder):
            pass
        else:
            return run_list(args.json)
    except (ModelLoadError, ValueError, SigningError) as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"{error.filename or args.action}: {error.strerror}")
    return 0


def run_list(as_json: bool) -> int:
    records, problems = catalog.list_models()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    if as_json:
        print(json.dumps([r.to_json() for r in records], indent=2))
        return 0
    for record in records:
        card = record.card
        mark = "*" if record.active else " "
        size = f"{record.size_bytes / 2**20:.1f} MB" if record.size_bytes else "?"
        print(f"{mark} {card.display_name} {card.version} ({card.precision}, {card.backbone}, {size}) {record.path}"
              f" [{models_trust.signer_line(record.path)}]")
    return 0


def run_activate(model: str) -> int:
    try:
        if model in bundled_model_dirs():
            catalog.set_active_model(model)
            target = model
        elif Path(model).is_dir():
            target = str(catalog.activate_model_dir(model))
        else:
            return fail(f"{model}: not a bundled model name or a model folder")
    except (ModelLoadError, OSError) as error:
        return fail(f"{model}: cannot activate ({error})")
    print(f"active model: {target}")
    return 0
