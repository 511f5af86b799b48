"""Give an INT8 model folder its ONNX Runtime form: export the graphs (:mod:`.onnx_export`), write them
beside the weights and record them in the card (:mod:`.onnx_form`).

torch is needed (the model is loaded in torch to be exported); the runtime that runs the form is not.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..store.atomic import atomic_write_bytes
from .artifact import update_card
from .card import read_model_card
from .onnx_export import ACTIVATIONS, OPSET, export_graphs
from .onnx_form import CARD_KEY, form_of_graphs, has_onnx_form, verified_graph_paths


def add_onnx_form(model_dir: str | Path, encoder_from: str | Path | None = None) -> dict:
    """Export the graphs of an existing INT8 model folder beside its weights and record them in its card.

    ``encoder_from``: a model folder whose verified encoder graph is reused, for a model whose image
    encoder is that model's, value for value (checked here); saves the export's slow half.
    """
    from .loading import load_model_dir

    model_dir = Path(model_dir)
    loaded = load_model_dir(model_dir, runtime="torch")
    if loaded.info.precision != "int8":
        raise ValueError(f"{model_dir}: the ONNX Runtime form is made for INT8 models only")
    encoder_graph = _same_encoder_graph(loaded.module, Path(encoder_from)) if encoder_from else None
    graphs = export_graphs(loaded.module, encoder_graph)
    for file, data in graphs.items():
        atomic_write_bytes(model_dir / file, data)
        (model_dir / file).chmod(0o644)
    field = form_of_graphs(graphs, OPSET, ACTIVATIONS).to_record()
    update_card(model_dir, {CARD_KEY: field})
    return field


def _same_encoder_graph(module: nn.Module, source_dir: Path) -> bytes | None:
    """The source model's encoder graph if its image encoder holds exactly ``module``'s values, else None."""
    from .loading import load_model_dir

    card = read_model_card(source_dir)
    if not has_onnx_form(card):
        return None
    source = load_model_dir(source_dir, runtime="torch").module.image_encoder.state_dict()
    mine = module.image_encoder.state_dict()
    if source.keys() != mine.keys() or not all(torch.equal(source[k], mine[k]) for k in mine):
        return None
    return verified_graph_paths(source_dir, card)["encoder"].read_bytes()


def add_onnx_form_after_training(model_dir: str | Path, say, encoder_from: str | Path | None = None) -> dict | None:
    """Give a freshly trained INT8 model its ONNX Runtime form, so the viewer runs it as fast as the shipped one.

    Without the form the model is still complete (``auto`` runs it on torch INT8), so a failed export is
    reported in one line and the run goes on rather than losing the trained model.
    """
    try:
        import onnx  # noqa: F401 - torch's exporter needs it
    except ImportError:
        say("ONNX Runtime form not written (the onnx package is not installed): the model runs on torch INT8")
        return None
    try:
        field = add_onnx_form(model_dir, encoder_from)
    except Exception as error:  # noqa: BLE001 - any exporter failure leaves the torch model usable
        say(f"ONNX Runtime form not written ({type(error).__name__}: {str(error)[:200]}): the model runs on torch INT8")
        return None
    total = sum(graph["bytes"] for graph in field["graphs"].values())
    say(f"ONNX Runtime form written ({total / 1e6:.1f} MB: encoder and decoder graphs)")
    return field
