"""The model a clinic fine-tune continues from (``adaqat train --from``), as a trainable float copy.

A clinic's short run must start from the model it already uses, not from generic weights, or it can
only lose. The shipped model is INT8; its exact float twin is the dequantised copy: every INT8 Linear
becomes an ``nn.Linear`` holding ``int8 * scale``, everything else (BatchNorm already folded) is
taken as stored. Quantising that copy again gives back the same int8 values, so layers a run does
not train are exported bit for bit as the clinic validated them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..models.card import read_model_card
from ..models.card import ModelCard
from ..models.catalog import active_model
from ..models.int8 import Int8Linear
from ..models.loading import LoadedModel, load_model

ACTIVE = "active"


@dataclass(frozen=True)
class ParentModel:
    """What a continued model records as its parent in ``model.json``."""

    name: str
    version: str
    weights_sha256: str
    precision: str
    path: str
    card: ModelCard | None  # None for a raw checkpoint or the pretrained backbone

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "weights_sha256": self.weights_sha256,
                "precision": self.precision, "path": self.path}


def resolve_parent_name(name_or_path: str | None) -> str:
    """``None`` or ``active``: the active model (the shipped default on a fresh install)."""
    if not name_or_path or name_or_path == ACTIVE:
        return active_model()
    return str(name_or_path)


def load_parent(name_or_path: str | None) -> tuple[LoadedModel, ParentModel]:
    loaded = load_model(resolve_parent_name(name_or_path), runtime="torch")  # training needs the torch layers
    info = loaded.info
    card = None
    if Path(info.path).is_dir():
        card = read_model_card(info.path)
    parent = ParentModel(info.name, info.version, info.weights_sha256, info.precision, info.path, card)
    return loaded, parent


@torch.no_grad()
def dequantised_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``Int8Linear`` replaced by an ``nn.Linear`` of weight ``int8 * scale``.

    The original keeps its INT8 kernels: it computes the cached embeddings exactly as deployed.
    """
    model = copy.deepcopy(model)
    targets = [(name, module) for name, module in model.named_modules() if isinstance(module, Int8Linear)]
    for name, module in targets:
        linear = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
        linear.weight.copy_(module.dequantized_weight())
        if module.bias is not None:
            linear.bias.copy_(module.bias)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, linear)
    return model


def trainable_float_model(loaded: LoadedModel) -> nn.Module:
    """A float model equal to the loaded one (INT8 layers dequantised); gradients everywhere off."""
    model = dequantised_copy(loaded.module)
    for parameter in model.parameters():
        parameter.requires_grad = False
    return model.float().eval()
