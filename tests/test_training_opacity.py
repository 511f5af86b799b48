"""Simulated basal opacities (issue 9): the image changes only where the opacity is, the mask never."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.training.augment import LUNG, AugmentConfig, add_opacity, augment, opacify_gray, opacity_weight
from core.training.dataset import SegmentationDataset
from core.training.example_loading import load_examples
from core.io.manifest import read_manifest
from core.training.config import TrainConfig, augment_config_of
from tests.shared_data import shared_file

ALWAYS = AugmentConfig(opacity_probability=1.0)


@pytest.fixture(scope="module")
def real_examples():
    manifest = read_manifest(shared_file("cxr-lungs", "manifest.csv"))
    examples, problems = load_examples(manifest.split("val")[:4], 256)
    assert not problems
    return examples


def tensors(example):
    return torch.from_numpy(example.image).float()[None], torch.from_numpy(example.mask)[None]


def lower_and_upper_lung(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lung = mask[0] == LUNG
    rows = torch.nonzero(lung)[:, 0].float()
    middle = float(rows.min() + rows.max()) / 2
    y = torch.arange(lung.shape[0])[:, None]
    return lung & (y > middle), lung & (y < float(rows.min()) + 0.2 * float(rows.max() - rows.min()))


def test_opacity_brightens_the_lung_base_only_where_its_weight_is(real_examples):
    for index, example in enumerate(real_examples):
        image, mask = tensors(example)
        out = add_opacity(image, mask, np.random.default_rng((5, index)), ALWAYS)
        weight = opacity_weight(mask[0] == LUNG, np.random.default_rng((5, index)), ALWAYS)  # same draws
        change = out[0] - image[0]
        assert (change >= 0).all(), "an opacity never darkens"
        assert torch.equal(out[0][weight == 0], image[0][weight == 0]), "nothing changes outside its reach"
        base, apex = lower_and_upper_lung(mask)
        assert change[base].mean() > 5.0, "the lower lung gets markedly brighter"
        assert change[base].mean() > 5 * change[apex].mean(), "the apex stays (nearly) as it was"
        top = int(torch.nonzero(mask[0] == LUNG)[:, 0].min())
        above = slice(0, max(0, top - 25))  # clear of the opacity's soft edge (a few % of a lung's width)
        assert torch.equal(out[0][above], image[0][above]), "nothing above the lungs changes"


def test_augment_keeps_the_mask_and_is_deterministic_with_a_seed(real_examples):
    image, mask = tensors(real_examples[0])
    config = dataclasses.replace(AugmentConfig(), opacity_probability=1.0)
    a = augment(image, mask, np.random.default_rng(3), config)
    b = augment(image, mask, np.random.default_rng(3), config)
    plain = augment(image, mask, np.random.default_rng(3), AugmentConfig())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(a[1], plain[1]), "the label is the anatomical lung: the opacity leaves the mask as it is"
    assert not torch.equal(a[0], plain[0])
    lung = plain[1][0] == LUNG
    assert (a[0][0][lung] - plain[0][0][lung]).mean() > 2.0  # brighter lungs after the same exposure changes
    c = augment(image, mask, np.random.default_rng(4), config)
    assert not torch.equal(a[0], c[0])


def test_probability_zero_is_the_old_augmentation_exactly(real_examples):
    image, mask = tensors(real_examples[1])
    for seed in range(5):
        old = augment(image, mask, np.random.default_rng(seed), AugmentConfig())
        zero = augment(image, mask, np.random.default_rng(seed), AugmentConfig(opacity_probability=0.0))
        assert torch.equal(old[0], zero[0]) and torch.equal(old[1], zero[1])
    assert AugmentConfig().opacity_probability == 0.0 and TrainConfig().opacity_augment == 0.0


def test_probability_sets_how_often_views_get_one(real_examples):
    image, mask = tensors(real_examples[2])
    config = AugmentConfig(opacity_probability=0.5)
    changed = 0
    for seed in range(40):
        with_opacity = augment(image, mask, np.random.default_rng(seed), config)[0]
        changed += not torch.equal(with_opacity, augment(image, mask, np.random.default_rng(seed), AugmentConfig())[0])
    assert 10 <= changed <= 30


def test_full_resolution_film_and_empty_mask(real_examples):
    from core.evaluation.runner import manifest_images

    item = next(manifest_images(read_manifest(shared_file("cxr-lungs", "manifest.csv")).split("val")[:1], []))
    out = opacify_gray(item.gray, item.truth, np.random.default_rng(0), ALWAYS)
    assert out.dtype == np.uint8 and out.shape == item.gray.shape
    assert (out.astype(int) >= item.gray).all() and (out != item.gray).any()
    assert np.array_equal(opacify_gray(item.gray, item.truth, np.random.default_rng(0), ALWAYS), out)
    blank = np.zeros_like(item.truth)
    assert np.array_equal(opacify_gray(item.gray, blank, np.random.default_rng(0), ALWAYS), item.gray)


def test_train_config_reaches_the_dataset(real_examples):
    config = augment_config_of(TrainConfig(opacity_augment=0.3))
    assert config.opacity_probability == 0.3
    dataset = SegmentationDataset(real_examples, train=True, augment_config=config)
    item = dataset[0]
    assert set(torch.unique(item["target"]).tolist()) <= {0.0, 1.0}


def test_cli_option_sets_the_probability():
    import argparse

    from core.cli import train_command

    parser = argparse.ArgumentParser()
    train_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", "m.csv", "--out", "o", "--from", "lite_medsam", "--opacity-augment", "0.4"])
    assert train_command.config_from_args(args, "cpu").opacity_augment == 0.4
