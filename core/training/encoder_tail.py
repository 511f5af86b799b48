"""The image encoder split at its last stage, for the clinic's tail profile.

A clinic's drawing rule (anatomical lung down into the posterior recesses, or aerated lung only) is
decided where the encoder sees the whole chest: the decoder alone, reading the parent's frozen
embeddings, learns little of it (measured: +0.002 Dice on a clinic's unseen images). Training the
whole encoder costs a laptop minutes per step. The middle way: the encoder up to its last attention
block (about 90 % of its time) stays as the parent's and runs once per augmented view; its output is
cached, and the last block, the neck and the prompt decoder train over that cache.

LiteMedSAM's TinyViT: ``patch_embed``, ``layers[0..2]`` and the first block of ``layers[3]`` form the
head; the last block of ``layers[3]`` (attention over 64x64 tokens) and ``neck`` the tail. One block,
not the stage's two: a step over two blocks took twice as long and its QAT step needed 5 GiB at batch 8
(measured), beyond a laptop's 4 GiB for the whole run. Other backbones are not split (the tail profile
refuses them with a message naming the decoder profile).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AdaqatError
from ..models.segmenter import PromptableSegmenter, decode_prompts

TAIL_LAYER = 3  # LiteMedSAM's last TinyViT stage
TAIL_BLOCK = 1  # its last attention block
TAIL_MODULES = (f"image_encoder.layers.{TAIL_LAYER}.blocks.{TAIL_BLOCK}.", "image_encoder.neck.")


class TailProfileUnsupported(AdaqatError, ValueError):
    """The backbone has no split the tail profile knows."""


def check_splittable(segmenter: PromptableSegmenter) -> None:
    encoder = segmenter.image_encoder
    layers = getattr(encoder, "layers", None)
    if (segmenter.backbone != "lite_medsam" or layers is None or len(layers) != TAIL_LAYER + 1
            or len(layers[TAIL_LAYER].blocks) != TAIL_BLOCK + 1 or layers[TAIL_LAYER].downsample is not None):
        raise TailProfileUnsupported(
            f"the tail profile adapts LiteMedSAM's last encoder stage; a {segmenter.backbone} model "
            "continues with --profile decoder")


def _head(encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    x = encoder.patch_embed(images)
    for layer in encoder.layers[:TAIL_LAYER]:
        x = layer(x)
    for block in encoder.layers[TAIL_LAYER].blocks[:TAIL_BLOCK]:
        x = block(x)
    return x


def _tail(encoder: nn.Module, features: torch.Tensor) -> torch.Tensor:
    x = features
    for block in encoder.layers[TAIL_LAYER].blocks[TAIL_BLOCK:]:
        x = block(x)
    batch, tokens, channels = x.shape
    side = int(round(tokens ** 0.5))
    return encoder.neck(x.view(batch, side, side, channels).permute(0, 3, 1, 2))


def head_encoder(segmenter: PromptableSegmenter):
    """images (B,1,S,S) 0-255 -> the features the last stage reads (B, tokens, C). Runs the parent's
    own (INT8) layers, so the cache holds what the exported model computes there."""
    check_splittable(segmenter)

    def encode(images_0_255: torch.Tensor) -> torch.Tensor:
        return _head(segmenter.image_encoder, segmenter.normalize(images_0_255))

    return encode


class _StageTail(nn.Module):
    """The last stage's trained block, under its own index (the head's block is a placeholder)."""

    def __init__(self, stage: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Identity()] * TAIL_BLOCK + list(stage.blocks[TAIL_BLOCK:]))


class _EncoderTail(nn.Module):
    """The encoder's tail under the encoder's own parameter names (``layers.3.blocks.1.…``, ``neck.…``),
    holding none of the head: copies, snapshots and checkpoints of the trained part stay small (a deep
    copy of the whole encoder for each step-time measurement cost the run ~1 GiB of peak memory)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Identity()] * TAIL_LAYER + [_StageTail(encoder.layers[TAIL_LAYER])])
        self.neck = encoder.neck


class TailDecoder(nn.Module):
    """Last encoder block + neck + prompt encoder + mask decoder, sharing the segmenter's modules (so
    training it, and merging adapters into it, changes the segmenter that is exported).
    ``forward(features, boxes)`` is what the training loop calls with ``batch["image"]`` = cached head
    features."""

    def __init__(self, segmenter: PromptableSegmenter) -> None:
        super().__init__()
        check_splittable(segmenter)
        self.backbone = segmenter.backbone
        self.image_encoder = _EncoderTail(segmenter.image_encoder)
        self.prompt_encoder = segmenter.prompt_encoder
        self.mask_decoder = segmenter.mask_decoder

    def forward(self, features: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        embeddings = _tail(self.image_encoder, features)
        logits, _ = decode_prompts(self.backbone, self.prompt_encoder, self.mask_decoder, embeddings, boxes=boxes)
        return logits
