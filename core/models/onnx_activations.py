"""Activation width of the INT8 graphs, chosen for the CPU they run on (as the torch route does).

The shipped graphs quantise each Linear's input to 7 bits, because on CPUs without an int8
dot-product instruction (plain AVX2 / AVX-512F) the u8 x s8 multiply saturates int16 pairs at 8 bits.
With VNNI or AMX it cannot saturate, and 8 bits halve the embedding's error (measured on the lent
Xeon: relative error 0.073 -> 0.035, the same as torch's oneDNN INT8) and run 10-16 % faster at
2-4 threads (``benchmarks/bench_encoder_isa.py``). So on such a CPU the verified graph is rewritten in
memory before its session is made: each ``QuantizeLinear`` chain feeding ``MatMulIntegerToFloat`` becomes
ONNX Runtime's one-pass ``DynamicQuantizeLinear`` (full uint8 range). The int8 weights, their scales
and every other node are untouched, so the weights that were validated are the ones that run.

``$ADAQAT_ORT_ACTIVATION_BITS`` (7 or 8) forces the width (benchmarks, tests).
"""

from __future__ import annotations

import os

BITS_ENV = "ADAQAT_ORT_ACTIVATION_BITS"
FUSED_MATMUL = "MatMulIntegerToFloat"


def activation_bits_for_this_cpu() -> int:
    """8 where the int8 product cannot saturate (VNNI/AMX), else 7 (``$ADAQAT_ORT_ACTIVATION_BITS`` wins)."""
    forced = os.environ.get(BITS_ENV, "").strip()
    if forced:
        if forced not in ("7", "8"):
            raise ValueError(f"{BITS_ENV}={forced!r}: expected 7 or 8")
        return int(forced)
    from .cpu_features import has_int8_dot_product  # not .int8: that imports torch

    return 8 if has_int8_dot_product() else 7


def with_8bit_activations(graph: bytes) -> bytes:
    """The graph with every fused INT8 MatMul fed by ``DynamicQuantizeLinear``; dead quantiser nodes dropped."""
    import onnx
    from onnx import helper

    model = onnx.load_from_string(graph)
    nodes = list(model.graph.node)
    producer = {output: node for node in nodes for output in node.output}
    dynamic: dict[str, tuple[str, str, str]] = {}  # float input -> (quantised, scale, zero point)
    ordered = []  # the original order (already topological), each new quantiser just before its first user
    for node in nodes:
        quantiser = producer.get(node.input[0]) if node.op_type == FUSED_MATMUL else None
        if quantiser is not None and quantiser.op_type == "QuantizeLinear":
            source = quantiser.input[0]
            if source not in dynamic:
                dynamic[source] = tuple(f"{source}/a8_{part}" for part in ("q", "scale", "zero_point"))
                ordered.append(helper.make_node("DynamicQuantizeLinear", [source], list(dynamic[source]),
                                                name=f"{source}/a8"))
            node.input[0], node.input[2], node.input[4] = dynamic[source]
        ordered.append(node)
    if not dynamic:
        return graph  # already dynamic 8-bit (or not ours): leave it as it is
    model.graph.ClearField("node")
    model.graph.node.extend(_live_nodes(ordered, [output.name for output in model.graph.output]))
    return model.SerializeToString()


def _live_nodes(nodes: list, outputs: list[str]) -> list:
    """The nodes some graph output depends on (the replaced 7-bit range arithmetic is not)."""
    producer = {output: node for node in nodes for output in node.output}
    live, pending = set(), list(outputs)
    while pending:
        node = producer.get(pending.pop())
        if node is not None and id(node) not in live:
            live.add(id(node))
            pending.extend(node.input)
    return [node for node in nodes if id(node) in live]
