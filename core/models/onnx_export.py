"""The ONNX Runtime form of an INT8 model: encoder and decoder graphs carrying the model's own int8 weights.

ONNX Runtime's own quantiser would re-quantise the weights; here every ``Int8Linear`` is written as
the same arithmetic the torch kernel runs, with the QAT-fitted int8 weights and per-channel scales
as they are stored: activations quantised per tensor to 7-bit uint8 (``QuantizeLinear`` with a scale
from the tensor's range; 7 bits because u8 x s8 products saturate on CPUs without VNNI, as in the
torch route: 8 bits doubled the encoder's error there), then ONNX Runtime's fused
``MatMulIntegerToFloat`` (int32 accumulation, ``x_scale * w_scale[channel]``, bias); measured 12 %
faster than ``MatMulInteger`` + Cast + Mul + Add. Convolutions, norms and attention stay float. So what was validated is what runs.

The prompt encoder (a few embeddings, no Linear layer) stays in torch; the decoder graph takes its
sparse and dense embeddings. Needs the ``onnx`` package at export time only (a dependency, because a
clinic fine-tune exports its model on the laptop); inference needs only ``onnxruntime``. This module only
builds the graphs: :mod:`.onnx_form_writer` puts them in a model folder, :mod:`.onnx_form` records them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import tempfile
import warnings

import torch
from torch import nn

from .int8 import Int8Linear
from .onnx_form import GRAPH_FILES

OPSET = 17
ACTIVATIONS = "dynamic per-tensor asymmetric uint8, 7-bit range, int32 accumulation (MatMulIntegerToFloat)"


class _Int8MatMul(torch.autograd.Function):
    """Eager: the dequantised product (for tracing only). Exported: the integer graph below."""

    @staticmethod
    def forward(ctx, x, weight_int8_t, weight_scale, bias):  # noqa: ARG004 - ctx is autograd's
        return x @ (weight_int8_t.float() * weight_scale) + bias

    @staticmethod
    def symbolic(g, x, weight_int8_t, weight_scale, bias):
        zero = g.op("Constant", value_t=torch.tensor(0.0))
        # the tensor's range in two steps, rows then all: ONNX Runtime reduces rows on every thread but a
        # whole tensor on one (same value, bit for bit; 6 % of the encoder at 2 threads, more with more)
        low = g.op("Min", g.op("ReduceMin", g.op("ReduceMin", x, axes_i=[-1], keepdims_i=0), keepdims_i=0), zero)
        high = g.op("Max", g.op("ReduceMax", g.op("ReduceMax", x, axes_i=[-1], keepdims_i=0), keepdims_i=0), zero)
        scale = g.op("Div", g.op("Sub", high, low), g.op("Constant", value_t=torch.tensor(127.0)))
        scale = g.op("Max", scale, g.op("Constant", value_t=torch.tensor(1e-8)))
        zero_point = g.op("Cast", g.op("Round", g.op("Div", g.op("Neg", low), scale)), to_i=2)  # uint8
        quantised = g.op("QuantizeLinear", x, scale, zero_point)
        # ONNX Runtime's fused kernel: integer product, scales and bias in one op (com.microsoft domain)
        return g.op("com.microsoft::MatMulIntegerToFloat", quantised, weight_int8_t, scale, weight_scale,
                    zero_point, g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8)), bias)


class _ExportedInt8Linear(nn.Module):
    def __init__(self, layer: Int8Linear) -> None:
        super().__init__()
        self.register_buffer("weight_int8_t", layer.weight_int8.t().contiguous())
        self.register_buffer("weight_scale", layer.weight_scale.clone())
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
        self.register_buffer("bias", bias.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Int8MatMul.apply(x, self.weight_int8_t, self.weight_scale, self.bias)


def _exportable(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model).cpu().float().eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, Int8Linear):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, _ExportedInt8Linear(module))
    return model


class _Decoder(nn.Module):
    """The mask decoder with SAM's single-mask output, as the predictor calls it."""

    def __init__(self, mask_decoder: nn.Module) -> None:
        super().__init__()
        self.mask_decoder = mask_decoder

    def forward(self, image_embeddings, image_pe, sparse, dense):
        return self.mask_decoder(image_embeddings=image_embeddings, image_pe=image_pe,
                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                 multimask_output=False)


@contextlib.contextmanager
def _quiet_native_stderr():
    """The exporter's C++ layer prints shape-inference notes for the contrib op straight to fd 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _to_bytes(module: nn.Module, inputs: tuple, input_names, output_names, dynamic_axes=None) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad(), _quiet_native_stderr():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic in the vendored models
        torch.onnx.export(module, inputs, buffer, dynamo=False, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes or {}, do_constant_folding=True)
    return buffer.getvalue()


def export_graphs(model: nn.Module, encoder_graph: bytes | None = None) -> dict[str, bytes]:
    """{file name: ONNX bytes} of an INT8 (or float) segmenter's encoder and decoder.

    ``encoder_graph``: the encoder's graph as already exported (a continued model whose encoder is bit for
    bit its parent's), used as it is; only the decoder is exported then.
    """
    exportable = _exportable(model)
    size = int(exportable.image_size)
    image = torch.zeros(1, 3, size, size)
    encoder = encoder_graph or _to_bytes(exportable.image_encoder, (image,), ["image"], ["embedding"])
    with torch.no_grad():
        embedding = exportable.image_encoder(image)
        sparse, dense = exportable.prompt_encoder(points=None, boxes=torch.tensor([[0.0, 0.0, size - 1.0, size - 1.0]]),
                                                  masks=None)
        image_pe = exportable.prompt_encoder.get_dense_pe()
    decoder = _to_bytes(_Decoder(exportable.mask_decoder), (embedding, image_pe, sparse, dense),
                        ["image_embeddings", "image_pe", "sparse", "dense"], ["low_res_logits", "iou"],
                        {"sparse": {1: "tokens"}})
    return {GRAPH_FILES["encoder"]: encoder, GRAPH_FILES["decoder"]: decoder}
