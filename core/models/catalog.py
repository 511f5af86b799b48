"""Where models live and which one is active.

Bundled models sit in ``resources/models`` (read-only, shipped); fine-tuned ones under the user's
data folder (``models/`` beside the viewer's annotation store). The active model is one small JSON
file there, ``active.json``, so the command line and the viewer agree on it; a fresh install has none
and uses the bundled ``default``. Writing it is atomic (temporary file, then rename).
"""

from __future__ import annotations

import errno
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .card import ModelCard
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


HISTORY_LENGTH = 20


def _read_active_file() -> dict:
    try:
        data = json.loads((user_models_dir() / ACTIVE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def active_model() -> str:
    """The active model's name or path; ``default`` when none was chosen or the choice is unreadable."""
    model = _read_active_file().get("model")
    return model if isinstance(model, str) and model.strip() else DEFAULT_MODEL


def activation_history() -> list[str]:
    """Models that were active before the current one, the most recent last (for roll back)."""
    history = _read_active_file().get("history")
    return [h for h in history if isinstance(h, str) and h.strip()] if isinstance(history, list) else []


def _write_active_file(model: str, history: list[str]) -> Path:
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ACTIVE_FILE
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps({"model": model, "history": history[-HISTORY_LENGTH:]}), encoding="utf-8")
    os.replace(partial, target)
    return target


def set_active_model(name_or_path: str | Path) -> Path:
    """Make ``name_or_path`` the active model (a bundled name, or a model folder); returns the file written.

    The model active until now goes onto the history, so it can be rolled back to.
    """
    value = str(name_or_path)
    if Path(value).is_dir():
        value = str(Path(value).resolve())
    previous = active_model()
    history = [h for h in activation_history() if h != value]
    if previous != value:
        history = [h for h in history if h != previous] + [previous]
    return _write_active_file(value, history)


def roll_back() -> str:
    """Re-activate the model that was active before the current one; returns it.

    Entries whose folder was deleted since are skipped. Raises ``ValueError`` when there is nothing
    to roll back to.
    """
    from .loading import bundled_model_dirs

    history = activation_history()
    bundled = bundled_model_dirs()
    while history:
        candidate = history.pop()
        if candidate in (DEFAULT_MODEL, *bundled) or (Path(candidate) / "model.json").is_file():
            _write_active_file(candidate, history)
            return candidate
    raise ValueError("no earlier model to roll back to")


def is_bundled(model_dir: str | Path) -> bool:
    from ..paths import bundled_models_dir

    try:
        return Path(model_dir).resolve().is_relative_to(bundled_models_dir().resolve())
    except OSError:
        return False


def install_model(model_dir: str | Path) -> Path:
    """Copy a trained model folder into the user's models folder (``NAME-VERSION``) and return it.

    The active model must not depend on a run folder the annotator may delete; an existing copy of
    the same name and version is kept as it is (same version, same weights).
    """
    import shutil

    from .artifact import verified_weights_path
    from .card import read_model_card

    source = Path(model_dir)
    card = read_model_card(source)
    verified_weights_path(source, card)
    target = user_models_dir() / install_label(card)
    if not (target / "model.json").is_file():
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
        except FileExistsError:
            raise OSError(errno.EEXIST, f"{staging} is in the way (a leftover of an interrupted install that "
                          "could not be removed); delete it and try again", str(staging)) from None
        try:
            for path in source.iterdir():  # plain files only: no links, pipes or sub-folders travel
                if path.is_file() and not path.is_symlink():
                    shutil.copy2(path, staging / path.name)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a full disk must not leave a hidden partial copy
            raise
    return target


def install_label(card: ModelCard) -> str:
    """The folder name of an installed model: ``NAME-VERSION`` with unsafe characters replaced."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in f"{card.name}-{card.version}").lstrip(".")


def activate_model_dir(model_dir: str | Path) -> Path:
    """Install a trained model and make it the active one; returns the installed folder."""
    installed = install_model(model_dir)
    set_active_model(installed)
    return installed


def is_active(model_dir: str | Path, active: str | None = None) -> bool:
    active = active_model() if active is None else active
    folder = Path(model_dir)
    if active == DEFAULT_MODEL:
        active = "default"
    return active in (str(folder.resolve()), folder.name) and (folder / "model.json").is_file()


def rename_model(model_dir: str | Path, label: str) -> ModelCard:
    """Give an installed model the annotator's own name (shown in lists; provenance keeps name + version)."""
    from .artifact import update_card

    if is_bundled(model_dir):
        raise ValueError(f"{model_dir}: a bundled model cannot be renamed")
    label = " ".join(label.split())
    if not label:
        raise ValueError("the new name is empty")
    return update_card(model_dir, {"label": label})


def delete_model(model_dir: str | Path) -> None:
    """Remove an installed model's folder; never a bundled one, never the active one."""
    import shutil

    folder = Path(model_dir)
    if is_bundled(folder):
        raise ValueError(f"{folder}: the bundled model cannot be deleted")
    if not folder.resolve().is_relative_to(user_models_dir().resolve()):
        raise ValueError(f"{folder}: not an installed model (only models in {user_models_dir()} can be deleted)")
    if is_active(folder):
        raise ValueError(f"{folder.name} is the active model: activate another model first")
    shutil.rmtree(folder)


@dataclass(frozen=True)
class ModelRecord:
    """One model as the catalog lists it: its card, where it lives, its size, bundled or active."""

    card: ModelCard
    path: Path
    size_bytes: int | None
    bundled: bool
    active: bool

    @property
    def metrics(self) -> dict:
        metrics = dict(self.card.metrics)
        new, parent = self.card.heldout_dice
        if new is not None:
            metrics["heldout_dice_new"] = new
            metrics["heldout_dice_parent"] = parent
        if self.card.validation_dice is not None:
            metrics.setdefault("val_dice", self.card.validation_dice)
        return metrics

    @property
    def active_value(self) -> str:
        """What ``active.json`` holds for this model: a bundled model's name, else its folder."""
        return self.path.name if self.bundled else str(self.path)

    def to_json(self) -> dict:
        """The record ``adaqat models --json`` prints."""
        card = self.card
        return {
            "name": card.name,
            "label": card.display_name,
            "version": card.version,
            "backbone": card.backbone,
            "precision": card.precision,
            "size_bytes": self.size_bytes,
            "trainable_params": card.parameters.trainable,
            "total_params": card.parameters.total_with_adapters,
            "parent": card.parent.to_json() if card.parent else None,
            "created": card.created or None,
            "training_images": card.training_images,
            "training_data": [source.to_json() for source in card.training_data],
            "confidence_calibration": card.confidence_calibration,
            "metrics": self.metrics,
            "path": str(self.path),
            "bundled": self.bundled,
            "active": self.active,
        }


def model_record(model_dir: Path, active: str) -> ModelRecord:
    """The catalog record of one model folder (card read and validated; weights not loaded)."""
    from .card import read_model_card

    card = read_model_card(model_dir)
    weights = model_dir / card.weights_file
    return ModelRecord(card, model_dir.resolve(), weights.stat().st_size if weights.is_file() else None,
                       is_bundled(model_dir), is_active(model_dir, active))


def model_folders() -> list[Path]:
    """Bundled folders first, then installed ones (oldest name first)."""
    from .loading import bundled_model_dirs

    folders = list(bundled_model_dirs().values())
    installed = user_models_dir()
    if installed.is_dir():
        folders += sorted(p for p in installed.iterdir() if p.is_dir() and not p.name.startswith("."))
    return folders


def list_models() -> tuple[list[ModelRecord], list[str]]:
    """Bundled and installed models (the active one marked), and one line per unreadable folder."""
    from .errors import ModelLoadError

    active = active_model()
    records, problems = [], []
    for folder in model_folders():
        try:
            records.append(model_record(folder, active))
        except (ModelLoadError, OSError, ValueError) as error:
            problems.append(f"{folder}: {error}")
    return records, problems
