"""The trainable half of a segmenter for the fast profile: prompt encoder + mask decoder only.

It shares its modules with the full segmenter (no copy), so training it on cached embeddings
trains the segmenter that is exported afterwards. ``forward(embeddings, boxes)`` has the signature
the training loop calls with ``batch["image"]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.segmenter import PromptableSegmenter, decode_prompts


class PromptDecoder(nn.Module):
    def __init__(self, segmenter: PromptableSegmenter) -> None:
        super().__init__()
        self.backbone = segmenter.backbone
        self.prompt_encoder = segmenter.prompt_encoder
        self.mask_decoder = segmenter.mask_decoder

    def forward(self, embeddings: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        logits, _ = decode_prompts(self.backbone, self.prompt_encoder, self.mask_decoder, embeddings, boxes=boxes)
        return logits
