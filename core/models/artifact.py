"""Model directories: ``model.json`` (how the model was made) plus weights in safetensors.

A model directory is the unit the CLI, the viewer and the annotator exchange. It is written into a
temporary sibling folder and renamed into place, so a crash or a full disk never leaves a half-written
model where a loader would find it. The weights' sha256 is recorded and checked on load, so a
tampered or truncated file is refused.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .card import CARD_FILE, FORMAT, ModelCard, read_model_card, regular_file
from .errors import ModelLoadError
from .safe_weights import sha256_of

if TYPE_CHECKING:  # writing a model needs torch; reading its card and checking its files does not
    import torch


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of the model that made a mask; stored with every mask."""

    name: str
    version: str
    backbone: str
    precision: str  # "fp32" or "int8"
    weights_sha256: str = ""
    path: str = ""

    @property
    def label(self) -> str:
        suffix = " INT8" if self.precision == "int8" else ""
        return f"{self.name} {self.version}{suffix}"


def verified_weights_path(model_dir: str | Path, card: ModelCard) -> Path:
    """The weights file named by the card, after checking that it is a plain file and its sha256."""
    weights = Path(model_dir) / card.weights_file
    regular_file(weights, "weights file")
    actual = sha256_of(weights)
    if actual != card.weights_sha256:
        raise ModelLoadError(
            f"{weights}: sha256 {actual[:12]}… does not match the model card ({card.weights_sha256[:12]}…); "
            "the file was altered or damaged, reinstall or retrain the model"
        )
    return weights


def info_from_card(model_dir: str | Path, card: ModelCard) -> ModelInfo:
    return ModelInfo(
        name=card.name,
        version=card.version,
        backbone=card.backbone,
        precision=card.precision,
        weights_sha256=card.weights_sha256,
        path=str(Path(model_dir).resolve()),
    )


def write_model_dir(
    out_dir: str | Path,
    card: ModelCard | dict,
    tensors: dict[str, torch.Tensor],
    weights_file: str = "model.safetensors",
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write weights + card atomically; returns the final directory.

    An existing directory at ``out_dir`` is replaced only after the new one is complete. ``card`` is
    validated as a :class:`ModelCard` (with the weights' name and sha256 filled in) before anything
    is renamed into place, so no loader ever meets a card it would refuse.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    fields = card.to_json() if isinstance(card, ModelCard) else dict(card)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_replace(out_dir)
    _remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        try:
            save_file(contiguous, str(staging / weights_file))
        except SafetensorError as error:  # its I/O failures (a full disk) are not OSError: make them one
            found = re.search(r"os error (\d+)", str(error))
            code = int(found.group(1)) if found else errno.EIO
            raise OSError(code, os.strerror(code), str(out_dir / weights_file)) from None
        for name, data in (extra_files or {}).items():
            (staging / name).write_bytes(data)
        fields.update(format=FORMAT, weights_file=weights_file, weights_sha256=sha256_of(staging / weights_file))
        ModelCard.from_json(fields, str(out_dir / CARD_FILE))
        card_path = staging / CARD_FILE
        card_path.write_text(json.dumps(fields, indent=2, sort_keys=True), encoding="utf-8")
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        if out_dir.exists():
            backup = _backup_of(out_dir)
            shutil.rmtree(backup, ignore_errors=True)
            out_dir.rename(backup)
            staging.rename(out_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        recover_interrupted_replace(out_dir)  # failed between the two renames: the old model goes back
        raise
    return out_dir


STALE_STAGING_S = 3600.0


def _backup_of(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + ".replaced")


def recover_interrupted_replace(out_dir: str | Path) -> bool:
    """Undo a replacement cut between its two renames (old model moved aside, new one not yet in).

    A crash at that instant leaves ``NAME.replaced`` and no ``NAME``; the previous model is put back,
    so a model directory that existed before a crash always exists after it. Returns True if it did.
    """
    out_dir = Path(out_dir)
    backup = _backup_of(out_dir)
    if out_dir.exists() or not (backup / CARD_FILE).is_file():
        return False
    try:
        backup.rename(out_dir)
    except OSError:
        return False
    return True


def _remove_stale_staging(out_dir: Path) -> None:
    """Staging folders (``.NAME.xxxxxxxx``) left by a writer that was killed, once they are an hour old."""
    pattern = re.compile(rf"^\.{re.escape(out_dir.name)}\.[a-z0-9_]{{8}}$")
    now = time.time()
    try:
        siblings = list(out_dir.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        try:
            if pattern.match(path.name) and path.is_dir() and now - path.stat().st_mtime > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def update_card(model_dir: str | Path, changes: dict) -> ModelCard:
    """Add or replace card fields of a written model (weights untouched, so its sha256 stays valid).

    Used for what is known only after the model exists on disk (its comparison with the active
    model) and for a rename. The new card is validated, then replaces the old one atomically.
    """
    from ..store.atomic import atomic_write_bytes

    fields = {**read_model_card(model_dir).to_json(), **changes}
    card = ModelCard.from_json(fields, str(Path(model_dir) / CARD_FILE))
    atomic_write_bytes(Path(model_dir) / CARD_FILE, json.dumps(fields, indent=2, sort_keys=True).encode("utf-8"))
    (Path(model_dir) / CARD_FILE).chmod(0o644)  # as written by write_model_dir: readable by every user
    return card
