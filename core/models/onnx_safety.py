"""An ONNX graph may only use what is inside its own bytes: no external data, no outside file.

Why: ONNX Runtime resolves a tensor's ``external_data`` location relative to the model's folder, or
to the *current folder* when the graph is given as bytes (as the product does, to run exactly the
bytes it checked). A swapped graph could so read any file the process can read and compute with it.
The product's own exports never use external data, so any such reference is refused before a
session is made, in every tensor of the graph, its nodes' attributes, subgraphs and functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from pathlib import Path

from .errors import ModelLoadError


def check_self_contained(path: Path, graph: bytes) -> None:
    """ModelLoadError when ``graph`` is not a parseable ONNX model or refers to data outside itself."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:  # pragma: no cover - onnx is a dependency
        return
    model = onnx.ModelProto()
    try:
        model.ParseFromString(graph)
    except (DecodeError, ValueError, RuntimeError):
        raise ModelLoadError(f"{path}: not a readable ONNX graph; reinstall the model") from None
    where = _first_external(model)
    if where:
        raise ModelLoadError(
            f"{path}: the ONNX graph refers to data outside the model package ({where}); "
            "a genuine model never does: refused, reinstall the model from a trusted package"
        )


def _first(findings: Iterable[str]) -> str:
    """The first non-empty finding; the rest are never computed."""
    return next((found for found in findings if found), "")


def _first_external(model) -> str:
    return _first(chain([_graph_external(model.graph)],
                        (_node_external(node) for function in model.functions for node in function.node)))


def _tensor_external(tensor) -> str:
    from onnx import TensorProto

    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        return f"tensor '{tensor.name[:60]}' stored in external file '{location[:80]}'"
    return ""


def _sparse_external(sparse) -> str:
    return _tensor_external(sparse.values) or _tensor_external(sparse.indices)


def _graph_external(graph) -> str:
    return _first(chain((_tensor_external(tensor) for tensor in graph.initializer),
                        (_sparse_external(sparse) for sparse in graph.sparse_initializer),
                        (_node_external(node) for node in graph.node)))


def _node_external(node) -> str:
    for attribute in node.attribute:
        tensors = ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
        sparse = ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(attribute.sparse_tensors)
        graphs = ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)
        found = _first(chain((_tensor_external(tensor) for tensor in tensors),
                             (_sparse_external(item) for item in sparse),
                             (_graph_external(graph) for graph in graphs)))
        if found:
            return found
    return ""
