"""Segment Anything ViT-B/L/H backbones, built from segment-anything's modules.

Official weights can't be downloaded by the product: they load only from a path the user gives, with
``weights_only=True`` or safetensors. ``build_sam_vit_*`` from segment-anything is not used because
it unpickles checkpoints. A checkpoint made for 1024 px can run at a smaller input size (the paper
uses 512 px): absolute and relative position embeddings are interpolated to the new grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer

from .backbone_specs import SAM_PATCH_SIZE as PATCH_SIZE
from .backbone_specs import SAM_PIXEL_MEAN as PIXEL_MEAN
from .backbone_specs import SAM_PIXEL_STD as PIXEL_STD
from .safe_weights import load_checked, read_state_dict
from .segmenter import PromptableSegmenter


@dataclass(frozen=True)
class ViTConfig:
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    image_size: int = 1024
    window_size: int = 14
    decoder_mlp_dim: int = 2048
    extra: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("extra")
        data["global_attn_indexes"] = list(self.global_attn_indexes)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "ViTConfig":
        data = dict(data)
        data["global_attn_indexes"] = tuple(data["global_attn_indexes"])
        return cls(**data)


VARIANTS = {
    "sam_vit_b": ViTConfig(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "sam_vit_l": ViTConfig(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "sam_vit_h": ViTConfig(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
}
# A structurally faithful miniature of ViT-B for fast tests of the ViT code paths.
TINY_TEST_CONFIG = ViTConfig(
    embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), image_size=256, window_size=4, decoder_mlp_dim=256
)


def variant_of_checkpoint(state: dict[str, torch.Tensor]) -> str | None:
    """Which official variant a state dict belongs to, from its patch-embedding width."""
    weight = state.get("image_encoder.patch_embed.proj.weight")
    if weight is None:
        return None
    for name, config in VARIANTS.items():
        if weight.shape[0] == config.embed_dim:
            return name
    return None


def build(name: str, config: ViTConfig, weights: str | Path | None = None) -> PromptableSegmenter:
    grid = config.image_size // PATCH_SIZE
    encoder = ImageEncoderViT(
        depth=config.depth,
        embed_dim=config.embed_dim,
        img_size=config.image_size,
        mlp_ratio=4,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        num_heads=config.num_heads,
        patch_size=PATCH_SIZE,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=config.global_attn_indexes,
        window_size=config.window_size,
        out_chans=256,
    )
    prompt_encoder = PromptEncoder(
        embed_dim=256,
        image_embedding_size=(grid, grid),
        input_image_size=(config.image_size, config.image_size),
        mask_in_chans=16,
    )
    decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=config.decoder_mlp_dim, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    model = PromptableSegmenter(name, encoder, prompt_encoder, decoder, config.image_size, PIXEL_MEAN, PIXEL_STD)
    if weights is not None:
        state = resize_position_embeddings(read_state_dict(weights), model.state_dict())
        load_checked(model, state, weights)
    return model.eval()


def resize_position_embeddings(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Interpolate ``pos_embed`` and global-attention ``rel_pos_*`` to the target input size.

    Only those two kinds of tensor are resized; any other shape difference is left for
    ``load_checked`` to report as a mismatch.
    """
    resized = dict(state)
    for key, tensor in state.items():
        if key not in target or target[key].shape == tensor.shape:
            continue
        if key.endswith("image_encoder.pos_embed") and tensor.ndim == 4:
            grid = target[key].shape[1:3]
            resized[key] = F.interpolate(
                tensor.permute(0, 3, 1, 2).float(), size=tuple(grid), mode="bicubic", align_corners=False
            ).permute(0, 2, 3, 1)
        elif key.endswith(("rel_pos_h", "rel_pos_w")) and tensor.ndim == 2 and tensor.shape[1] == target[key].shape[1]:
            length = target[key].shape[0]
            resized[key] = F.interpolate(
                tensor.t().unsqueeze(0).float(), size=length, mode="linear", align_corners=False
            )[0].t()
    return resized
