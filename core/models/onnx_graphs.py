"""Names of a model's ONNX Runtime form, shared by the exporter (torch) and the runtime (no torch)."""

from __future__ import annotations

FORMAT = "adaqat-onnx/1"
GRAPH_FILES = {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
