"""One module type for every backbone: image encoder + prompt encoder + mask decoder.

LiteMedSAM (TinyViT) and SAM ViT-B/L/H share the SAM prompt-encoder / mask-decoder interface, so the
predictor, the trainer and the quantiser see one shape of model whatever the backbone.
"""

from __future__ import annotations

import torch
from torch import nn


class PromptableSegmenter(nn.Module):
    """A SAM-style segmenter.

    ``pixel_mean`` / ``pixel_std`` are in 0-255 units and applied in ``normalize`` so that every caller
    (training and inference) feeds the encoder the same way.
    """

    def __init__(
        self,
        backbone: str,
        image_encoder: nn.Module,
        prompt_encoder: nn.Module,
        mask_decoder: nn.Module,
        image_size: int,
        pixel_mean: tuple[float, float, float],
        pixel_std: tuple[float, float, float],
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.image_size = image_size
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images_0_255: torch.Tensor) -> torch.Tensor:
        """(B,1|3,S,S) float in 0-255 -> the encoder's input distribution."""
        if images_0_255.shape[1] == 1:
            images_0_255 = images_0_255.expand(-1, 3, -1, -1)
        return (images_0_255 - self.pixel_mean) / self.pixel_std

    def encode(self, images_0_255: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(self.normalize(images_0_255))

    def decode(
        self,
        embeddings: torch.Tensor,
        boxes: torch.Tensor | None = None,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-resolution mask logits (B,1,S/4,S/4) and IoU predictions for one prompt per image.

        ``boxes`` (B,4) and ``points`` ((B,N,2), (B,N) labels 1/0) are in model-input pixels.
        """
        return decode_prompts(self.backbone, self.prompt_encoder, self.mask_decoder, embeddings, boxes, points)

    def forward(self, images_0_255: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        logits, _ = self.decode(self.encode(images_0_255), boxes=boxes)
        return logits


def decode_prompts(
    backbone: str,
    prompt_encoder: nn.Module,
    mask_decoder: nn.Module,
    embeddings: torch.Tensor,
    boxes: torch.Tensor | None = None,
    points: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt encoder + mask decoder on image embeddings (shared by the segmenter and by training on
    cached embeddings, which holds only these two parts)."""
    if backbone != "lite_medsam" and embeddings.shape[0] > 1:
        # segment-anything's decoder pairs ONE image embedding with a batch of prompts
        # (repeat_interleave); LiteMedSAM's pairs image i with prompt i. Decode image by image.
        outputs = [
            decode_prompts(
                backbone,
                prompt_encoder,
                mask_decoder,
                embeddings[i : i + 1],
                None if boxes is None else boxes[i : i + 1],
                None if points is None else (points[0][i : i + 1], points[1][i : i + 1]),
            )
            for i in range(embeddings.shape[0])
        ]
        return torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])
    sparse, dense = prompt_encoder(points=points, boxes=boxes, masks=None)
    return mask_decoder(
        image_embeddings=embeddings,
        image_pe=prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
