"""INT8 models for CPU inference: quantise Linear layers, save them as safetensors, load them back.

Scheme (matches the QAT fake-quant for weights; see caveat for activations):

- weights: int8, per output channel, symmetric: ``scale[o] = max|W[o, :]| / 127``,
  ``W_int8 = round(W / scale)`` in [-127, 127] (round half to even, as ``torch.round``);
- activations: quantised dynamically at run time by the kernel, **per tensor**, asymmetric uint8
  (8 bits with a zero point; 7 bits on CPUs without VNNI, see below), int32 accumulation, float32
  output with the bias added.
  QAT fakes **per-token** int8 activations; no CPU kernel reachable from PyTorch does per-token at
  speed (``benchmarks/bench_int8_kernels.py``: per-token quantisation in eager PyTorch costs more
  than the int8 GEMM saves: 0.5-0.7x FP32). On pretrained LiteMedSAM, 30 chest X-rays, the mask
  agreement with FP32 was the same for both (whole-image box, mean Dice 0.964 per-tensor kernel vs
  0.966 per-token fake-quant). Validate a QAT model through this exported INT8 model, not through
  its fake-quant twin.

Kernel ("route"): PyTorch's dynamic quantised linear, ``torch.ops.quantized.linear_dynamic``, with
weights packed at load time for the engine that suits the CPU:

- x86 with an int8 dot-product instruction (AVX512-VNNI, AVX-VNNI, AMX): oneDNN, full 8-bit
  activations (``reduce_range=False``);
- x86 without one (plain AVX2 / AVX-512F: e.g. AMD Zen 2/3, Intel <= 10th gen laptops): fbgemm with
  ``reduce_range=True`` (7-bit activations). There the u8 x s8 multiply (``vpmaddubsw``) saturates
  int16 pairs on 8-bit activations: measured with oneDNN capped at AVX2, 2-3 % output error on
  LiteMedSAM layers, against < 0.01 % with VNNI; 7 bits can't saturate;
- ARM: qnnpack; anywhere the quantised engines fail, or for non-CPU inputs: a float reference path
  (dequantised weights, float activations).

``$ADAQAT_INT8_ENGINE`` forces one of ``onednn``, ``fbgemm``, ``qnnpack``, ``reference``. The file
format does not depend on the route: only int8 weights, float32 scales and float32 biases are
stored. Nothing is ever unpickled.

File layout (flat safetensors): for each INT8 Linear ``<name>.weight_int8`` (int8, out x in),
``<name>.weight_scale`` (float32, out), ``<name>.bias`` (float32, out; absent when the layer has
none); every other parameter and persistent buffer as float32 under its usual name. ``model.json``
has ``"precision": "int8"``, ``"int8_policy"``, ``"int8"`` (the spec: format, route, layer names) and
``"inference": {"batchnorm_folded": bool, "channels_last": bool}``.
"""

from __future__ import annotations

import copy
import os
import platform
import re
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .artifact import write_model_dir
from .card import ModelCard, read_model_card
from .cpu_features import has_int8_dot_product as cpu_has_int8_dot_product
from .errors import ModelLoadError
from .inference_opt import channels_last_encoder, fold_batchnorm

SPEC_FORMAT = "adaqat-int8-linear/1"
ROUTE = "dynamic-int8-linear"  # torch.ops.quantized.linear_dynamic; engine chosen at load time
WEIGHT_SCHEME = "int8 symmetric per output channel, scale = max|w| / 127, values in [-127, 127]"
ACTIVATION_SCHEME = "dynamic per-tensor asymmetric uint8 (7-bit without VNNI), int32 accumulation"
ENGINE_ENV = "ADAQAT_INT8_ENGINE"  # force "onednn", "fbgemm", "qnnpack" or "reference"
ENGINES = ("onednn", "fbgemm", "qnnpack", "reference")

KeepFloat = Callable[[str, nn.Linear], bool]


# --------------------------------------------------------------------------------------------------
# engine


def has_int8_dot_product() -> bool:
    """Whether the CPU multiplies u8 x s8 without int16 saturation (x86 VNNI or AMX).

    Honours a ``ONEDNN_MAX_CPU_ISA`` cap below VNNI (used to emulate older CPUs in benchmarks). The
    same answer as the torch-free ONNX Runtime route's (:mod:`.cpu_features`).
    """
    return cpu_has_int8_dot_product()


def select_engine() -> str:
    """The quantised engine INT8 layers are packed for on this machine (``$ADAQAT_INT8_ENGINE`` wins)."""
    forced = os.environ.get(ENGINE_ENV, "").strip().lower()
    if forced:
        if forced not in ENGINES:
            raise ValueError(f"{ENGINE_ENV}={forced!r}: expected one of {', '.join(ENGINES)}")
        return forced
    supported = set(torch.backends.quantized.supported_engines)
    if not hasattr(torch.ops.quantized, "linear_dynamic"):
        return "reference"
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    if x86 and "onednn" in supported and has_int8_dot_product():
        return "onednn"
    if x86 and "fbgemm" in supported:
        return "fbgemm"
    if x86 and "onednn" in supported:
        return "onednn"  # with reduce_range, see reduce_range_for
    if "qnnpack" in supported:
        return "qnnpack"
    return "reference"


def reduce_range_for(engine: str) -> bool:
    """7-bit activations where 8 bits could saturate: fbgemm (PyTorch's rule), oneDNN without VNNI."""
    if engine == "fbgemm":
        return True
    if engine == "onednn":
        return not has_int8_dot_product()
    return False


@contextmanager
def _quantized_engine(engine: str):
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float weight -> (int8 weight, float32 per-row scale); symmetric, max|w| / 127."""
    w = weight.detach().float()
    amax = w.abs().amax(dim=1)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q, scale.float()


# --------------------------------------------------------------------------------------------------
# the module


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 per-channel weights and dynamically quantised int8 activations (CPU).

    State: buffers ``weight_int8`` (int8), ``weight_scale`` (float32), ``bias`` (float32, if any).
    The kernel's packed weights are built lazily from them (and rebuilt after ``load_state_dict``).
    Inference only (no gradients).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, engine: str | None = None) -> None:
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_scale", torch.ones(out_features, dtype=torch.float32))
        if bias:
            self.register_buffer("bias", torch.zeros(out_features, dtype=torch.float32))
        else:
            self.bias = None
        self.requested_engine = engine
        self._packed = None
        self._engine: str | None = None
        self._reduce_range = False
        self._dequantized: torch.Tensor | None = None

    @classmethod
    def from_float(cls, linear: nn.Linear, engine: str | None = None) -> "Int8Linear":
        module = cls(linear.in_features, linear.out_features, linear.bias is not None, engine)
        q, scale = quantize_weight(linear.weight)
        module.weight_int8.copy_(q)
        module.weight_scale.copy_(scale)
        if linear.bias is not None:
            module.bias.copy_(linear.bias.detach().float())
        return module.to(linear.weight.device)

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.float() * self.weight_scale[:, None]

    @property
    def engine(self) -> str:
        """The engine actually in use (after packing); ``reference`` if packing was impossible."""
        if self._engine is None:
            self.prepare()
        return self._engine

    def reset_packed(self) -> None:
        self._packed = None
        self._engine = None
        self._dequantized = None

    @torch.no_grad()
    def prepare(self) -> None:
        """Pack the int8 weights for the kernel now (done lazily on first use otherwise)."""
        engine = self.requested_engine or select_engine()
        self._packed, self._engine, self._dequantized = None, "reference", None
        if engine != "reference" and self.weight_int8.device.type == "cpu":
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # quantized-tensor creation is deprecated in torch 2.1x
                    qweight = torch._make_per_channel_quantized_tensor(
                        self.weight_int8.contiguous(),
                        self.weight_scale.double(),
                        torch.zeros(self.out_features, dtype=torch.long),
                        0,
                    )
                    bias = None if self.bias is None else self.bias.float().contiguous()
                    with _quantized_engine(engine):
                        self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
                self._engine = engine
                self._reduce_range = reduce_range_for(engine)
            except (RuntimeError, AttributeError, NotImplementedError) as error:
                warnings.warn(f"Int8Linear: {engine} packing failed ({str(error).splitlines()[0]}); "
                              "using the float reference path", RuntimeWarning, stacklevel=2)
                self._packed = None
        if self._packed is None:
            self._dequantized = self.dequantized_weight()

    def _load_from_state_dict(self, *args, **kwargs):
        self.reset_packed()
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn, recurse=True):  # .to() / .float() etc.: repack if the buffers were replaced
        before = [t.data_ptr() for t in self.buffers(recurse=False)]
        result = super()._apply(fn, recurse)
        if [t.data_ptr() for t in self.buffers(recurse=False)] != before:
            self.reset_packed()
        return result

    def __getstate__(self):  # copy.deepcopy / pickle: packed kernel weights are rebuilt on demand
        state = self.__dict__.copy()
        state.update(_packed=None, _engine=None, _dequantized=None)
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._engine is None:
            self.prepare()
        if self._packed is not None and x.device.type == "cpu":
            if x.dtype != torch.float32:
                return torch.ops.quantized.linear_dynamic(x.float(), self._packed, self._reduce_range).to(x.dtype)
            return torch.ops.quantized.linear_dynamic(x, self._packed, self._reduce_range)
        weight = self._dequantized if self._dequantized is not None else self.dequantized_weight()
        weight = weight.to(x.device, x.dtype)
        bias = None if self.bias is None else self.bias.to(x.device, x.dtype)
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        engine = f", engine={self._engine}{' (7-bit activations)' if self._reduce_range else ''}" if self._engine else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}{engine}"


# --------------------------------------------------------------------------------------------------
# policies and quantisation

_ENCODER_QKV = re.compile(r"^image_encoder\.(.+\.)?attn\.qkv(\..+)?$")


def _keep_encoder_qkv(name: str, _linear: nn.Linear) -> bool:
    """``paper``: every image-encoder ``*.attn.qkv`` (where the adapters lived) stays float."""
    return bool(_ENCODER_QKV.match(name))


def _keep_nothing(_name: str, _linear: nn.Linear) -> bool:
    """``merged``: every Linear is INT8, qkv included (adapters merged into qkv first)."""
    return False


POLICIES: dict[str, KeepFloat] = {"paper": _keep_encoder_qkv, "merged": _keep_nothing}


def _check_no_adapters(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if type(module).__module__.startswith("peft") or hasattr(module, "lora_A"):
            raise ValueError(
                f"{name or type(module).__name__}: the model still holds adapter modules; "
                "merge them into the base weights first (merge_and_unload)"
            )


def _replaceable_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    found = []
    for parent_name, parent in model.named_modules():
        if isinstance(parent, nn.MultiheadAttention):
            continue  # reads out_proj.weight directly; leave it float
        for child_name, child in parent.named_children():
            if type(child) is nn.Linear:
                found.append((f"{parent_name}.{child_name}" if parent_name else child_name, child))
    return found


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


@torch.no_grad()
def quantize_linear_layers(model: nn.Module, keep_float: KeepFloat, engine: str | None = None) -> nn.Module:
    """Replace (in place) every ``nn.Linear`` whose qualified name ``keep_float`` rejects by an
    ``Int8Linear``; returns ``model`` in eval mode. Adapters must be merged beforehand."""
    _check_no_adapters(model)
    for name, linear in _replaceable_linears(model):
        if not keep_float(name, linear):
            _set_submodule(model, name, Int8Linear.from_float(linear, engine))
    return model.eval()


def int8_layer_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, Int8Linear)]


def int8_state(model_quantized: nn.Module) -> tuple[dict[str, torch.Tensor], dict]:
    """Flat tensors for safetensors (persistent state only, floats as float32) and the INT8 spec."""
    tensors = {}
    for key, value in model_quantized.state_dict().items():
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
        tensors[key] = value.clone().contiguous()  # no shared storage: safetensors refuses aliasing
    layers = int8_layer_names(model_quantized)
    spec = {
        "format": SPEC_FORMAT,
        "route": ROUTE,
        "weights": WEIGHT_SCHEME,
        "activations": ACTIVATION_SCHEME,
        "layers": layers,
    }
    return tensors, spec


# --------------------------------------------------------------------------------------------------
# export / load


def _fp32_card_fields(model: nn.Module, card: ModelCard | dict) -> dict:
    from .registry import config_of

    card = card.to_json() if isinstance(card, ModelCard) else dict(card)
    for key in ("name", "version", "backbone"):
        if key not in card:
            raise ValueError(f"model card lacks '{key}'")
    if card["backbone"] != getattr(model, "backbone", card["backbone"]):
        raise ValueError(f"model card says backbone '{card['backbone']}' but the model is '{model.backbone}'")
    if "backbone_config" not in card and hasattr(model, "image_encoder"):
        card["backbone_config"] = config_of(model)
    return card


def export_int8_model_dir(
    fp32_model: nn.Module, out_dir: str | Path, card: ModelCard | dict, policy: str, channels_last: bool | None = None
) -> Path:
    """Fold BatchNorm, quantise under ``policy`` and write a model directory; returns it.

    ``fp32_model`` is not modified (a copy is quantised). ``card`` needs ``name``, ``version`` and
    ``backbone``; precision, policy, INT8 spec and inference flags are filled in here.
    ``channels_last`` (recorded in the card, applied at load): default on for LiteMedSAM, where it
    was measured to help; off for SAM ViT.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown int8 policy '{policy}' (known: {', '.join(POLICIES)})")
    card = _fp32_card_fields(fp32_model, card)
    if channels_last is None:
        channels_last = card["backbone"] == "lite_medsam"
    model = copy.deepcopy(fp32_model).cpu().float().eval()
    folded = fold_batchnorm(model)
    quantize_linear_layers(model, POLICIES[policy])
    tensors, spec = int8_state(model)
    inference = dict(card.get("inference") or {}, channels_last=bool(channels_last))
    # a model continued from an INT8 parent is already folded (nothing left to fold): keep saying so
    inference["batchnorm_folded"] = folded > 0 or bool(inference.get("batchnorm_folded"))
    card.update(precision="int8", int8_policy=policy, int8=spec, inference=inference)
    return write_model_dir(out_dir, card, tensors)


def _error(weights_path: Path, message: str) -> ModelLoadError:
    return ModelLoadError(f"{weights_path}: {message}")


def load_int8_module(card: ModelCard, weights_path: Path) -> nn.Module:
    """Rebuild the INT8 model a card describes and fill it from its safetensors file (no pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .registry import build_backbone
    from .safe_weights import load_checked

    weights_path = Path(weights_path)
    spec = card.int8
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list):
        raise _error(weights_path, "INT8 model card has no 'int8' layer list; re-export the model")
    if spec.get("format") != SPEC_FORMAT:
        raise _error(weights_path, f"INT8 format {spec.get('format')!r} is not supported (expected {SPEC_FORMAT})")
    backbone = card.backbone
    model = build_backbone(backbone, None, (card.backbone_config or None) if backbone != "lite_medsam" else None)
    inference = card.inference
    if inference.get("batchnorm_folded"):
        fold_batchnorm(model)

    linears = dict(_replaceable_linears(model))
    for name in spec["layers"]:
        linear = linears.get(name)
        if linear is None:
            raise _error(weights_path, f"INT8 layer '{name}' is not a Linear layer of backbone {backbone}")
        _set_submodule(model, name, Int8Linear(linear.in_features, linear.out_features, linear.bias is not None))

    try:
        state = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise _error(weights_path, f"not a readable safetensors file ({error})") from None
    expected = model.state_dict()
    wrong_dtype = [
        f"{k} is {state[k].dtype} (expected {expected[k].dtype})"
        for k in expected
        if k in state and state[k].dtype != expected[k].dtype
    ]
    if wrong_dtype:
        raise _error(weights_path, f"{len(wrong_dtype)} tensors of the wrong type (e.g. {'; '.join(wrong_dtype[:2])})")
    load_checked(model, state, weights_path)  # names missing / unexpected / mis-shaped tensors
    for name, module in model.named_modules():
        if isinstance(module, Int8Linear):
            scale = module.weight_scale
            if not bool(torch.isfinite(scale).all()) or not bool((scale > 0).all()):
                raise _error(weights_path, f"{name}.weight_scale has non-positive or non-finite values")
    model.eval()  # after loading: TinyViT caches its attention biases in eval()
    if inference.get("channels_last") and hasattr(model, "image_encoder"):
        channels_last_encoder(model)
    for module in model.modules():
        if isinstance(module, Int8Linear):
            module.prepare()
    return model


def model_file_size(model_dir: str | Path) -> int:
    """Bytes of the weights file of a model directory."""
    card = read_model_card(model_dir)
    return os.path.getsize(Path(model_dir) / card.weights_file)
