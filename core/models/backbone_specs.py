"""What running a backbone needs to know without building it: input normalisation and grid sizes.

The ONNX Runtime route runs a model from its graphs and never builds the torch modules, so the few
numbers it shares with them (pixel statistics, the image-embedding grid) live here, torch-free, and
the torch builders read them from here too.
"""

from __future__ import annotations

BACKBONES = ("lite_medsam", "sam_vit_b", "sam_vit_l", "sam_vit_h")
LITE_MEDSAM_IMAGE_SIZE = 256
SAM_DEFAULT_IMAGE_SIZE = 1024
# LiteMedSAM was trained on images min-max scaled to [0, 1]: mean 0, std 255 in 0-255 units.
LITE_MEDSAM_PIXEL_MEAN = (0.0, 0.0, 0.0)
LITE_MEDSAM_PIXEL_STD = (255.0, 255.0, 255.0)
LITE_MEDSAM_DOWNSAMPLE = 4  # TinyViT: 256 px input -> 64 x 64 embedding
# SAM normalises 0-255 RGB with ImageNet statistics.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)
SAM_PATCH_SIZE = 16


def pixel_stats(backbone: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(mean, std) in 0-255 units of the encoder's input distribution."""
    if backbone == "lite_medsam":
        return LITE_MEDSAM_PIXEL_MEAN, LITE_MEDSAM_PIXEL_STD
    return SAM_PIXEL_MEAN, SAM_PIXEL_STD


def embedding_grid(backbone: str, image_size: int) -> int:
    """Side of the (square) image embedding the prompt encoder and mask decoder work on."""
    return image_size // (LITE_MEDSAM_DOWNSAMPLE if backbone == "lite_medsam" else SAM_PATCH_SIZE)


def default_image_size(backbone: str) -> int:
    return LITE_MEDSAM_IMAGE_SIZE if backbone == "lite_medsam" else SAM_DEFAULT_IMAGE_SIZE
