"""Image embeddings computed once by the frozen encoder, for training only the prompt decoder.

On a 2-core laptop the encoder is ~95 % of a training step, and a clinic's short run does not change
it (the fast profile trains the mask decoder). Encoding each training image once per augmented view
turns a step of seconds into a fraction of a second. Views are augmented before encoding (view 0 is
the image as is); prompts are sampled per epoch from each view's mask. Embeddings are kept in fp16
(2 MiB per view for LiteMedSAM), masks at model size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import AugmentConfig, augment
from .example_cache import IGNORE, LUNG, Example
from .prompts import training_box, whole_image_box

ENCODE_BATCH = 4


@dataclass
class EmbeddingCache:
    embeddings: torch.Tensor  # (N,C,h,w) fp16
    masks: torch.Tensor  # (N,S,S) uint8 0/127/255
    regions: list[tuple[int, int]]
    ids: list[str]
    seconds: float = 0.0

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def nbytes(self) -> int:
        return self.embeddings.numel() * self.embeddings.element_size() + self.masks.numel()


def views_of(examples: list[Example], views: int, seed: int, config: AugmentConfig | None = None):
    """(id, image (1,S,S) float 0-255, mask (1,S,S) uint8, region) for every example x view."""
    config = config or AugmentConfig()
    for view in range(views):
        for index, example in enumerate(examples):
            image = torch.from_numpy(example.image).float()[None]
            mask = torch.from_numpy(example.mask)[None]
            if view > 0:
                image, mask = augment(image, mask, np.random.default_rng((seed, 7919, view, index)), config)
            yield f"{example.id}#{view}", image, mask, example.region_hw


@torch.inference_mode()
def build_cache(encode: Callable[[torch.Tensor], torch.Tensor], examples: list[Example], views: int = 1,
                seed: int = 0, on_image: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                augment_config: AugmentConfig | None = None) -> EmbeddingCache:
    """Encode ``views`` versions of every example; ``should_stop`` (checked between batches, after
    the first full view) ends early with what is done, which the time budget relies on."""
    started = time.perf_counter()
    total = len(examples) * views
    embeddings, masks, regions, ids = [], [], [], []
    pending: list = []

    def flush() -> None:
        batch = torch.stack([item[1] for item in pending])
        embeddings.append(encode(batch).to(torch.float16))
        for item in pending:
            ids.append(item[0])
            masks.append(item[2][0])
            regions.append(item[3])
        pending.clear()
        if on_image:
            on_image(len(ids), total)

    for item in views_of(examples, views, seed, augment_config):
        pending.append(item)
        if len(pending) == ENCODE_BATCH:
            flush()
            if should_stop and len(ids) >= len(examples) and should_stop():
                break
    if pending:
        flush()
    return EmbeddingCache(torch.cat(embeddings), torch.stack(masks), regions, ids, time.perf_counter() - started)


def shifted(features: torch.Tensor, mask: torch.Tensor, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and mask translated by (dy, dx) feature cells: the encoder's features move with the
    image (convolutions and windowed attention with relative biases), so this is an augmentation that
    costs nothing on a cache. Cells shifted in repeat the edge; mask pixels shifted in are "ignore"."""
    grid = features.dim() == 2  # (tokens, C) of the tail cache, else (C, h, w) embeddings
    side = int(round(features.shape[0] ** 0.5)) if grid else features.shape[-1]
    scale = mask.shape[-1] // side
    rows = (torch.arange(side) - dy).clamp(0, side - 1)
    cols = (torch.arange(side) - dx).clamp(0, side - 1)
    if grid:
        moved = features.view(side, side, -1)[rows][:, cols].reshape(features.shape)
    else:
        moved = features[:, rows][:, :, cols]
    out = torch.full_like(mask, IGNORE)
    size = mask.shape[-1]
    ys, xs = slice(max(0, dy * scale), size + min(0, dy * scale)), slice(max(0, dx * scale), size + min(0, dx * scale))
    src_y = slice(max(0, -dy * scale), size - max(0, dy * scale))
    src_x = slice(max(0, -dx * scale), size - max(0, dx * scale))
    out[ys, xs] = mask[src_y, src_x]
    return moved, out


class CachedEmbeddingDataset(Dataset):
    """Items shaped like ``SegmentationDataset``'s, with the embedding in place of the image.

    ``shift_cells``: training items are translated by up to that many feature cells each epoch (see
    ``shifted``), on top of the augmented views encoded into the cache."""

    def __init__(self, cache: EmbeddingCache, train: bool, seed: int = 0, auto_prompt_probability: float = 0.5,
                 border_weight: float = 0.0, shift_cells: int = 0) -> None:
        self.cache = cache
        self.shift_cells = shift_cells
        self.border_weight = border_weight  # training items only: see losses.bce_dice_loss
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.auto_prompt_probability = auto_prompt_probability

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        mask = self.cache.masks[index]
        features = self.cache.embeddings[index]
        region = self.cache.regions[index]
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            if self.shift_cells > 0:
                dy, dx = (int(v) for v in rng.integers(-self.shift_cells, self.shift_cells + 1, size=2))
                features, mask = shifted(features, mask, dy, dx)
            box = training_box(mask.numpy(), region, rng, self.auto_prompt_probability)
        else:
            box = whole_image_box(region)
        item = {
            "image": features.float(),
            "target": (mask == LUNG).float()[None],
            "valid": (mask != IGNORE).float()[None],
            "box": torch.from_numpy(box),
        }
        if self.train and self.border_weight > 0:
            item["border_weight"] = torch.tensor(float(self.border_weight))
        return item
