"""A model's ONNX Runtime form, as its card records it: the format, the graph files and their digests.

Shared by the exporter (torch, writes the graphs) and the runtime (no torch, runs them); neither imports
the other. ``onnx_form(card)`` reads the card's ``onnx`` record into a typed :class:`OnnxForm`;
``verified_graphs`` checks each graph file against it before a byte of it runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .card import ModelCard, ModelCardError, regular_file
from .errors import ModelLoadError
from .onnx_safety import check_self_contained

FORMAT = "adaqat-onnx/1"
GRAPH_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
CARD_KEY = "onnx"  # the card's record of the form (``model.json``: "onnx": {...})


@dataclass(frozen=True)
class GraphRecord:
    file: str
    sha256: str
    bytes: int | None = None


@dataclass(frozen=True)
class OnnxForm:
    """The card's record of the graphs; ``opset`` and ``activations`` say how they were exported."""

    graphs: dict[str, GraphRecord]
    format: str = FORMAT
    opset: int | None = None
    activations: str | None = None

    def to_record(self) -> dict:
        record = {"format": self.format, "opset": self.opset, "activations": self.activations,
                  "graphs": {part: {"file": g.file, "sha256": g.sha256, "bytes": g.bytes}
                             for part, g in self.graphs.items()}}
        return {key: value for key, value in record.items() if value is not None}


def has_onnx_form(card: ModelCard) -> bool:
    return isinstance(card.extra.get(CARD_KEY), dict)


def onnx_form(card: ModelCard, model_dir: Path | str = ".") -> OnnxForm | None:
    """The card's ONNX form; None when it has none; ModelCardError when the record is not one of ours."""
    spec = card.extra.get(CARD_KEY)
    if spec is None:
        return None
    card_path = Path(model_dir) / "model.json"
    graphs = spec.get("graphs") if isinstance(spec, dict) else None
    if not isinstance(graphs, dict) or spec.get("format") != FORMAT or set(graphs) != set(GRAPH_FILES):
        raise ModelCardError(f"{card_path}: 'onnx' is not an {FORMAT} record; re-export the ONNX form")
    records = {}
    for part, entry in graphs.items():
        name = entry.get("file") if isinstance(entry, dict) else None
        if name != GRAPH_FILES[part]:
            raise ModelCardError(f"{card_path}: onnx graph '{part}' must be {GRAPH_FILES[part]}")
        records[part] = GraphRecord(name, entry.get("sha256"), entry.get("bytes"))
    return OnnxForm(records, FORMAT, spec.get("opset"), spec.get("activations"))


def form_of_graphs(graphs: dict[str, bytes], opset: int, activations: str) -> OnnxForm:
    """The record of freshly exported graphs ({file name: bytes}): each graph's sha256 and size."""
    return OnnxForm({part: GraphRecord(file, hashlib.sha256(graphs[file]).hexdigest(), len(graphs[file]))
                     for part, file in GRAPH_FILES.items()}, FORMAT, opset, activations)


def verified_graph_paths(model_dir: Path, card: ModelCard) -> dict[str, Path]:
    """{part: path} of the card's graphs, each a plain file whose sha256 matches the card."""
    return {part: path for part, (path, _) in verified_graphs(model_dir, card).items()}


def verified_graphs(model_dir: Path, card: ModelCard) -> dict[str, tuple[Path, bytes]]:
    """{part: (path, bytes)}: each graph read once, checked against the card, and these bytes are what runs."""
    form = onnx_form(card, model_dir)
    if form is None:
        raise ModelCardError(f"{model_dir / 'model.json'}: 'onnx' is not an {FORMAT} record; re-export the ONNX form")
    paths = {}
    for part, record in form.graphs.items():
        path = model_dir / record.file
        regular_file(path, f"ONNX {part} graph")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != record.sha256:
            raise ModelLoadError(f"{path}: sha256 {digest[:12]}… does not match the model card; the graph was "
                                 "altered or damaged, reinstall the model (or run it with --runtime torch)")
        check_self_contained(path, data)
        paths[part] = (path, data)
    return paths
