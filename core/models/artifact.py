"""Model directories: ``model.json`` (how the model was made) plus weights in safetensors.

A model directory is the unit the CLI, the viewer and the annotator exchange. It is written into a
temporary sibling folder and renamed into place, so a crash or a full disk never leaves a half-written
model where a loader would find it. The weights' sha256 is recorded and checked on load, so a
tampered or truncated file is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from .errors import ModelLoadError
from .safe_weights import sha256_of

CARD_FILE = "model.json"
FORMAT = "adaqat-model/1"


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


def read_card(model_dir: str | Path) -> dict:
    card_path = Path(model_dir) / CARD_FILE
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{model_dir}: not a model directory (no {CARD_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{card_path}: unreadable model card ({error})") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelLoadError(f"{card_path}: not an {FORMAT} model card")
    for key in ("name", "version", "backbone", "precision", "weights_file", "weights_sha256"):
        if key not in card:
            raise ModelLoadError(f"{card_path}: model card lacks '{key}'")
    return card


def verified_weights_path(model_dir: str | Path, card: dict) -> Path:
    """The weights file named by the card, after checking its sha256."""
    weights = Path(model_dir) / card["weights_file"]
    if weights.name != card["weights_file"] or not weights.is_file():
        raise ModelLoadError(f"{weights}: weights file missing from the model directory")
    actual = sha256_of(weights)
    if actual != card["weights_sha256"]:
        raise ModelLoadError(
            f"{weights}: sha256 {actual[:12]}… does not match the model card ({card['weights_sha256'][:12]}…); "
            "the file was altered or damaged, reinstall or retrain the model"
        )
    return weights


def info_from_card(model_dir: str | Path, card: dict) -> ModelInfo:
    return ModelInfo(
        name=str(card["name"]),
        version=str(card["version"]),
        backbone=str(card["backbone"]),
        precision=str(card["precision"]),
        weights_sha256=str(card["weights_sha256"]),
        path=str(Path(model_dir).resolve()),
    )


def write_model_dir(
    out_dir: str | Path,
    card: dict,
    tensors: dict[str, torch.Tensor],
    weights_file: str = "model.safetensors",
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write weights + card atomically; returns the final directory.

    An existing directory at ``out_dir`` is replaced only after the new one is complete.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(contiguous, str(staging / weights_file))
        for name, data in (extra_files or {}).items():
            (staging / name).write_bytes(data)
        card = dict(card, format=FORMAT, weights_file=weights_file, weights_sha256=sha256_of(staging / weights_file))
        card_path = staging / CARD_FILE
        card_path.write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
        staging.chmod(0o755)
        for path in staging.iterdir():
            path.chmod(0o644)
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        if out_dir.exists():
            backup = out_dir.with_name(out_dir.name + ".replaced")
            shutil.rmtree(backup, ignore_errors=True)
            out_dir.rename(backup)
            staging.rename(out_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
