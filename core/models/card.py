"""The model card (``model.json``) as a type: what a model is, where it came from, how well it did.

A model folder is the artefact the clinic exchanges, so its card is validated once, here, when it is
read or written: loading, INT8, the catalog and the GUI then use typed fields and never read dicts by
key (peft's ``PeftConfig.save_pretrained``/``from_pretrained`` is the pattern). Fields this module
does not know (training histories, adapter rank patterns, library versions) are kept verbatim in
``extra`` so a card written by a newer trainer survives a rename or a comparison update.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelLoadError

CARD_FILE = "model.json"
FORMAT = "adaqat-model/1"
PRECISIONS = ("fp32", "int8")
MAX_CARD_BYTES = 4 * 2**20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ModelCardError(ModelLoadError):
    """A ``model.json`` that is missing, unreadable, of the wrong shape, or not a plain file."""


@dataclass(frozen=True)
class ParentRef:
    """The model a continued (clinic) model started from."""

    name: str
    version: str
    weights_sha256: str
    precision: str = ""
    path: str = ""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ParameterCounts:
    trainable: int | None = None
    total_with_adapters: int | None = None
    full_finetune: int | None = None
    reduction_vs_full: float | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class TrainingSource:
    """One data set a model learned from: a clinic asks what data a model saw, and under what licence."""

    source: str
    images: int
    licence: str = ""

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


MAX_TRAINING_SOURCES = 100


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    backbone: str
    precision: str
    weights_file: str = "model.safetensors"
    weights_sha256: str = ""
    format: str = FORMAT
    created: str = ""
    label: str = ""  # the annotator's name for it (rename); provenance keeps name + version
    method: str = ""
    parent: ParentRef | None = None
    parameters: ParameterCounts = field(default_factory=ParameterCounts)
    metrics: dict = field(default_factory=dict)
    backbone_config: dict = field(default_factory=dict)
    inference: dict = field(default_factory=dict)
    int8_policy: str = ""
    int8: dict | None = None
    training: dict = field(default_factory=dict)
    training_data: tuple[TrainingSource, ...] = ()
    clinic_comparison: dict | None = None
    confidence_calibration: dict | None = None  # core.segment.confidence_calibration: this model's own offset
    extra: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- derived, for lists and the GUI
    @property
    def display_name(self) -> str:
        return self.label or self.name

    @property
    def training_images(self) -> int | None:
        """Distinct training images: the sources' counts when recorded (a weighted mix repeats some)."""
        if self.training_data:
            return sum(source.images for source in self.training_data)
        count = self.training.get("train_images")
        return count if isinstance(count, int) and not isinstance(count, bool) else None

    @property
    def heldout_dice(self) -> tuple[float | None, float | None]:
        """(new model, parent) mean Dice on the held-out images of a clinic run; (None, None) otherwise."""
        comparison = self.clinic_comparison or {}
        new = (comparison.get("new_model") or {}).get("dice_mean")
        old = (comparison.get("active_model") or {}).get("dice_mean")
        return _number_or_none(new), _number_or_none(old)

    @property
    def validation_dice(self) -> float | None:
        """The best validation Dice training recorded (the INT8 card's QAT value when present)."""
        if self.precision == "int8":
            value = _number_or_none((self.extra.get("qat") or {}).get("val_dice_fake_quant_best"))
            if value is not None:
                return value
        return _number_or_none(self.metrics.get("val_dice_auto_model_resolution"))

    @property
    def confidence_shift(self) -> float:
        """Offset of this model's predicted log error (0 = the shipped confidence model as fitted)."""
        return float((self.confidence_calibration or {}).get("bias_shift", 0.0))

    def replace(self, **changes) -> "ModelCard":
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- JSON
    def to_json(self) -> dict:
        data = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None or (f.name in ("label", "method", "int8_policy", "created") and value == ""):
                continue
            if f.name == "training_data":
                if not value:
                    continue
                value = [source.to_json() for source in value]
            elif isinstance(value, (ParentRef, ParameterCounts)):
                value = value.to_json()
                if not value:
                    continue
            elif isinstance(value, dict) and not value and f.name in _OPTIONAL_DICTS:
                continue
            data[f.name] = value
        return data

    @classmethod
    def from_json(cls, data: object, source: str = CARD_FILE) -> "ModelCard":
        """Validate ``data`` (a parsed ``model.json``); raises :class:`ModelCardError` with one line."""
        if not isinstance(data, dict):
            raise ModelCardError(f"{source}: not a model card (a JSON object was expected)")
        if data.get("format") != FORMAT:
            raise ModelCardError(f"{source}: not an {FORMAT} model card (format {_short(data.get('format'))}); "
                                 "it was made by another program or a newer version of this one")
        check = _Checker(source, data)
        known = {f.name for f in dataclasses.fields(cls)}
        card = cls(
            name=check.text("name"),
            version=check.text("version"),
            backbone=check.backbone(),
            precision=check.choice("precision", PRECISIONS),
            weights_file=check.file_name("weights_file"),
            weights_sha256=check.sha256("weights_sha256"),
            created=check.text("created", required=False),
            label=check.text("label", required=False),
            method=check.text("method", required=False),
            parent=check.parent(),
            parameters=check.parameters(),
            metrics=check.metrics(),
            backbone_config=check.mapping("backbone_config"),
            inference=check.mapping("inference"),
            int8_policy=check.text("int8_policy", required=False),
            int8=check.mapping("int8", default=None),
            training=check.mapping("training"),
            training_data=check.training_data(),
            clinic_comparison=check.mapping("clinic_comparison", default=None),
            confidence_calibration=check.confidence_calibration(),
            extra={k: v for k, v in data.items() if k not in known},
        )
        if card.precision == "int8" and card.int8 is None:
            raise ModelCardError(f"{source}: INT8 model card has no 'int8' layer list; re-export the model")
        size = card.backbone_config.get("image_size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 4096):
            raise ModelCardError(f"{source}: backbone_config.image_size must be a whole number of pixels "
                                 f"(32 to 4096), not {_short(size)}; re-export the model")
        return card


_OPTIONAL_DICTS = ("metrics", "backbone_config", "inference", "training")


def _number_or_none(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


@dataclass
class _Checker:
    """Field checks that name the card and the field in every message."""

    source: str
    data: dict

    def fail(self, key: str, wanted: str) -> ModelCardError:
        return ModelCardError(f"{self.source}: '{key}' must be {wanted} (found {_type_name(self.data.get(key))}); "
                              "the model card is damaged: reinstall or re-export the model")

    def text(self, key: str, required: bool = True) -> str:
        if key not in self.data and not required:
            return ""
        value = self.data.get(key)
        if not isinstance(value, str) or (required and not value.strip()) or len(value) > 500 \
                or _CONTROL.search(value):
            raise self.fail(key, "non-empty text without control characters" if required else "text")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.data.get(key)
        if value not in allowed:
            raise self.fail(key, " or ".join(repr(a) for a in allowed))
        return value

    def backbone(self) -> str:
        from .backbone_specs import BACKBONES  # not .registry: that builds models, with torch

        value = self.data.get("backbone")
        if value not in BACKBONES:
            raise ModelCardError(f"{self.source}: backbone {_short(value)} is not supported by this version "
                                 f"(known: {', '.join(BACKBONES)})")
        return value

    def file_name(self, key: str) -> str:
        value = self.text(key)
        if value in (".", "..") or value.startswith(".") or "/" in value or "\\" in value or ":" in value:
            raise ModelCardError(f"{self.source}: '{key}' must name a file inside the model folder "
                                 f"(found {_short(value)})")
        return value

    def sha256(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not _SHA256.match(value):
            raise self.fail(key, "a sha256 digest (64 hex digits)")
        return value

    def mapping(self, key: str, default: object = dataclasses.MISSING):
        if key not in self.data:
            return {} if default is dataclasses.MISSING else default
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.fail(key, "an object")
        return value

    def confidence_calibration(self) -> dict | None:
        calibration = self.mapping("confidence_calibration", default=None)
        if calibration is not None and _number_or_none(calibration.get("bias_shift")) is None:
            raise ModelCardError(f"{self.source}: confidence_calibration.bias_shift must be a finite number "
                                 f"(found {_type_name(calibration.get('bias_shift'))}); retrain or re-export the model")
        return calibration

    def metrics(self) -> dict:
        metrics = self.mapping("metrics")
        for name, value in metrics.items():
            if value is not None and _number_or_none(value) is None:
                raise ModelCardError(f"{self.source}: metric {_short(name)} must be a finite number "
                                     f"(found {_type_name(value)})")
        return metrics

    def parameters(self) -> ParameterCounts:
        counts = self.mapping("parameters")
        values = {}
        for f in dataclasses.fields(ParameterCounts):
            value = counts.get(f.name)
            if value is None:
                continue
            integer = f.name != "reduction_vs_full"
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or value < 0:
                raise ModelCardError(f"{self.source}: parameters.{f.name} must be a non-negative "
                                     f"{'whole number' if integer else 'number'} (found {_type_name(value)})")
            values[f.name] = value
        return ParameterCounts(**values)

    def training_data(self) -> tuple[TrainingSource, ...]:
        """The list of data sets the model was trained on: each {source, images, licence}."""
        value = self.data.get("training_data", [])
        if not isinstance(value, list) or len(value) > MAX_TRAINING_SOURCES:
            raise self.fail("training_data", f"a list of at most {MAX_TRAINING_SOURCES} sources")
        sources = []
        for index, entry in enumerate(value):
            if not isinstance(entry, dict):
                raise self.fail("training_data", "a list of {source, images, licence} objects")
            nested = _Checker(f"{self.source} (training_data[{index}])", entry)
            images = entry.get("images")
            if isinstance(images, bool) or not isinstance(images, int) or images < 0:
                raise nested.fail("images", "a non-negative whole number")
            sources.append(TrainingSource(source=nested.text("source"), images=images,
                                          licence=nested.text("licence", required=False)))
        return tuple(sources)

    def parent(self) -> ParentRef | None:
        parent = self.mapping("parent", default=None)
        if parent is None:
            return None
        nested = _Checker(f"{self.source} (parent)", parent)
        return ParentRef(
            name=nested.text("name"), version=nested.text("version"), weights_sha256=nested.sha256("weights_sha256"),
            precision=nested.text("precision", required=False), path=nested.text("path", required=False),
        )


# ------------------------------------------------------------------------------------ files on disk

def regular_file(path: Path, what: str) -> os.stat_result:
    """``path``'s status if it is a plain file in place; a link, FIFO, device or folder is refused.

    Opening a FIFO blocks forever and a link can point anywhere on the disk, so neither is read.
    """
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        raise ModelCardError(f"{path}: {what} missing from the model folder") from None
    except OSError as error:
        raise ModelCardError(f"{path}: cannot read the {what} ({error.strerror})") from None
    if stat.S_ISLNK(status.st_mode):
        raise ModelCardError(f"{path}: the {what} is a symbolic link; a model folder must hold the real file")
    if not stat.S_ISREG(status.st_mode):
        raise ModelCardError(f"{path}: the {what} is not a regular file (a pipe, device or folder)")
    return status


def read_model_card(model_dir: str | Path) -> ModelCard:
    """The validated card of a model folder."""
    import json

    card_path = Path(model_dir) / CARD_FILE
    if not Path(model_dir).is_dir():
        raise ModelCardError(f"{model_dir}: not a model folder")
    try:
        os.lstat(card_path)
    except FileNotFoundError:
        raise ModelCardError(f"{model_dir}: not a model directory (no {CARD_FILE})") from None
    except OSError:
        pass
    status = regular_file(card_path, "model card")
    if status.st_size > MAX_CARD_BYTES:
        raise ModelCardError(f"{card_path}: model card is {status.st_size} bytes, larger than any real card")
    try:
        data = json.loads(card_path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ModelCardError(f"{card_path}: unreadable model card ({type(error).__name__})") from None
    return ModelCard.from_json(data, str(card_path))
