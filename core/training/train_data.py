"""A run's training and validation examples, from whichever source it was given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import TrainConfig, augment_config_of
from .dataset import SegmentationDataset
from .example_cache import Example, load_example_cache


@dataclass
class TrainData:
    train: list[Example]
    val: list[Example]
    problems: list[str]


def load_train_data(data_path: str | Path, image_size: int, config: TrainConfig) -> TrainData:
    """From a manifest CSV (decoded here), a prepared example cache (.npz) or an annotation store folder."""
    if Path(data_path).is_dir():
        from .store_source import examples_from_store

        splits, problems = examples_from_store(data_path, image_size)
        return TrainData(splits["train"][: config.max_train_images], splits["val"][: config.max_val_images], problems)
    if str(data_path).endswith(".npz"):
        splits = load_example_cache(data_path)
        train, val = splits.get("train", []), splits.get("val", [])
        if train and train[0].image.shape[0] != image_size:
            raise ValueError(f"{data_path}: examples are {train[0].image.shape[0]} px, the model needs {image_size} px")
        return TrainData(train[: config.max_train_images], val[: config.max_val_images], [])
    from .example_loading import load_examples  # decoding needs OpenCV / pydicom
    from ..io.manifest import read_manifest

    manifest = read_manifest(data_path)
    train_samples = manifest.split("train")[: config.max_train_images]
    val_samples = manifest.split("val")[: config.max_val_images]
    train, train_problems = load_examples(train_samples, image_size)
    val, val_problems = load_examples(val_samples, image_size)
    return TrainData(train, val, manifest.problems + train_problems + val_problems)


def datasets(data: TrainData, config: TrainConfig) -> tuple[SegmentationDataset, SegmentationDataset]:
    train_set = SegmentationDataset(data.train, train=config.augment, seed=config.seed,
                                    auto_prompt_probability=config.auto_prompt_probability,
                                    augment_config=augment_config_of(config))
    if not config.augment:
        train_set.train = False
    return train_set, SegmentationDataset(data.val, train=False)
