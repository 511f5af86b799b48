"""Where models live and which one is active.

Bundled models sit in ``resources/models`` (read-only, shipped); fine-tuned ones under the user's
data folder (``models/`` beside the viewer's annotation store). The active model is one small JSON
file there, ``active.json``, so the command line and the viewer agree on it; a fresh install has none
and uses the bundled ``default``. Writing it is atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .loading import DEFAULT_MODEL

HOME_ENV = "ADAQAT_HOME"
ACTIVE_FILE = "active.json"
APP_DIR = ("AdaQAT", "AdaQAT Viewer")  # the viewer's organisation and application names


def user_data_dir() -> Path:
    """``$ADAQAT_HOME``, else the platform's per-user application data folder (as Qt's AppDataLocation)."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base.joinpath(*APP_DIR)


def user_models_dir() -> Path:
    return user_data_dir() / "models"


def active_model() -> str:
    """The active model's name or path; ``default`` when none was chosen or the choice is unreadable."""
    try:
        data = json.loads((user_models_dir() / ACTIVE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return DEFAULT_MODEL
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) and model.strip() else DEFAULT_MODEL


def set_active_model(name_or_path: str | Path) -> Path:
    """Make ``name_or_path`` the active model (a bundled name, or a model folder); returns the file written."""
    value = str(name_or_path)
    if Path(value).is_dir():
        value = str(Path(value).resolve())
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ACTIVE_FILE
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps({"model": value}), encoding="utf-8")
    os.replace(partial, target)
    return target


def install_model(model_dir: str | Path) -> Path:
    """Copy a trained model folder into the user's models folder (``NAME-VERSION``) and return it.

    The active model must not depend on a run folder the annotator may delete; an existing copy of
    the same name and version is kept as it is (same version, same weights).
    """
    import shutil

    from .artifact import read_card, verified_weights_path

    source = Path(model_dir)
    card = read_card(source)
    verified_weights_path(source, card)
    label = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in f"{card['name']}-{card['version']}")
    target = user_models_dir() / label
    if not (target / "model.json").is_file():
        staging = target.with_name(f".{label}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(source, staging)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    return target


def activate_model_dir(model_dir: str | Path) -> Path:
    """Install a trained model and make it the active one; returns the installed folder."""
    installed = install_model(model_dir)
    set_active_model(installed)
    return installed


def model_record(model_dir: Path, active: str) -> dict:
    """What ``adaqat models`` shows for one model folder (read from its card; weights not loaded)."""
    from .artifact import read_card

    card = read_card(model_dir)
    weights = model_dir / str(card.get("weights_file", "model.safetensors"))
    parameters = card.get("parameters") or {}
    comparison = card.get("clinic_comparison") or {}
    metrics = dict(card.get("metrics") or {})
    if comparison:
        metrics["heldout_dice_new"] = comparison.get("new_model", {}).get("dice_mean")
        metrics["heldout_dice_parent"] = comparison.get("active_model", {}).get("dice_mean")
    resolved = str(model_dir.resolve())
    return {
        "name": card.get("name"),
        "version": card.get("version"),
        "backbone": card.get("backbone"),
        "precision": card.get("precision"),
        "size_bytes": weights.stat().st_size if weights.is_file() else None,
        "trainable_params": parameters.get("trainable"),
        "total_params": parameters.get("total_with_adapters"),
        "parent": card.get("parent"),
        "created": card.get("created"),
        "metrics": metrics,
        "path": resolved,
        "active": active in (resolved, model_dir.name),
    }


def list_models() -> tuple[list[dict], list[str]]:
    """Bundled and installed models (the active one marked), and one line per unreadable folder."""
    from .errors import ModelLoadError
    from .loading import bundled_model_dirs

    active = active_model()
    if active == DEFAULT_MODEL:
        active = "default"
    folders = list(bundled_model_dirs().values())
    installed = user_models_dir()
    if installed.is_dir():
        folders += sorted(p for p in installed.iterdir() if p.is_dir() and not p.name.startswith("."))
    records, problems = [], []
    for folder in folders:
        try:
            records.append(model_record(folder, active))
        except (ModelLoadError, OSError, ValueError) as error:
            problems.append(f"{folder}: {error}")
    return records, problems
