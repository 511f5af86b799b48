"""A torch Dataset over in-memory examples: augmentation and prompt sampling per item.

Randomness comes from a generator seeded by (seed, epoch, index), so a resumed run replays the same
augmentations without saving any generator state.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import AugmentConfig, augment
from .example_cache import IGNORE, LUNG, Example
from .prompts import mask_box, training_box, whole_image_box


class SegmentationDataset(Dataset):
    def __init__(
        self,
        examples: list[Example],
        train: bool,
        seed: int = 0,
        auto_prompt_probability: float = 0.5,
        augment_config: AugmentConfig | None = None,
        eval_prompt: str = "auto",
    ) -> None:
        self.examples = examples
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.auto_prompt_probability = auto_prompt_probability
        self.augment_config = augment_config or AugmentConfig()
        self.eval_prompt = eval_prompt  # without augmentation: "auto" (whole image) or "box" (ground truth)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        example = self.examples[index]
        image = torch.from_numpy(example.image).float()[None]
        mask = torch.from_numpy(example.mask)[None]
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            image, mask = augment(image, mask, rng, self.augment_config)
            box = training_box(mask[0].numpy(), example.region_hw, rng, self.auto_prompt_probability)
        elif self.eval_prompt == "box" and mask_box(example.mask) is not None:
            box = mask_box(example.mask)
        else:
            box = whole_image_box(example.region_hw)
        return {
            "image": image,
            "target": (mask == LUNG).float(),
            "valid": (mask != IGNORE).float(),
            "box": torch.from_numpy(box),
        }
