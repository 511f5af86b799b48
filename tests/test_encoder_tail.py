"""The tail profile's pieces: the encoder split, the cached-feature augmentation and the border loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.training.embedding_cache import CachedEmbeddingDataset, EmbeddingCache, shifted
from core.training.encoder_tail import (
    TAIL_MODULES,
    TailDecoder,
    TailProfileUnsupported,
    _tail,
    check_splittable,
    head_encoder,
)
from core.training.example_cache import IGNORE, LUNG
from core.training.losses import bce_dice_loss, border_band


@pytest.fixture(scope="module")
def shipped_float():
    from core.models.loading import load_model
    from core.training.parent import trainable_float_model

    return trainable_float_model(load_model("default", runtime="torch"))


def test_head_then_tail_is_the_whole_encoder(shipped_float):
    images = torch.rand(2, 1, 256, 256) * 255
    with torch.no_grad():
        whole = shipped_float.encode(images)
        split = _tail(TailDecoder(shipped_float).image_encoder, head_encoder(shipped_float)(images))
    assert split.shape == whole.shape == (2, 256, 64, 64)
    assert torch.allclose(split, whole, atol=1e-4)


def test_the_trained_part_holds_only_the_tail_under_the_encoders_names(shipped_float):
    tail = TailDecoder(shipped_float)
    encoder_names = {f"image_encoder.{n}" for n, _ in shipped_float.image_encoder.named_parameters()}
    mine = [n for n, _ in tail.named_parameters() if n.startswith("image_encoder.")]
    assert mine and all(n.startswith(TAIL_MODULES) and n in encoder_names for n in mine)
    head = [n for n in encoder_names if not n.startswith(TAIL_MODULES)]
    assert len(head) > len(mine)  # the frozen head is not part of what trains, copies or checkpoints
    block = shipped_float.image_encoder.layers[3].blocks[1]
    assert tail.image_encoder.layers[3].blocks[1] is block  # shared: training it trains the segmenter


def test_backbones_without_the_split_are_refused_by_name():
    from core.models.segmenter import PromptableSegmenter

    vit = PromptableSegmenter("sam_vit_b", nn.Identity(), nn.Identity(), nn.Identity(), 1024, (0, 0, 0), (1, 1, 1))
    with pytest.raises(TailProfileUnsupported, match="sam_vit_b model continues with --profile decoder"):
        check_splittable(vit)


def test_choosing_the_profile_falls_back_to_the_decoder_for_other_backbones():
    from core.models.segmenter import PromptableSegmenter
    from core.training.continue_run import choose_profile
    from core.training.config import TrainConfig

    vit = PromptableSegmenter("sam_vit_b", nn.Identity(), nn.Identity(), nn.Identity(), 1024, (0, 0, 0), (1, 1, 1))
    config = TrainConfig()
    assert choose_profile(config, vit) == "decoder" and config.profile == "decoder"
    with pytest.raises(TailProfileUnsupported):
        choose_profile(TrainConfig(profile="tail"), vit)


def test_a_shift_moves_features_and_mask_together():
    features = torch.arange(64 * 64, dtype=torch.float32).view(64 * 64, 1).repeat(1, 3)  # tokens x C
    mask = torch.zeros(256, 256, dtype=torch.uint8)
    mask[100:140, 60:120] = LUNG
    moved, moved_mask = shifted(features, mask, 2, -3)
    grid, moved_grid = features.view(64, 64, 3), moved.view(64, 64, 3)
    assert torch.equal(moved_grid[10, 20], grid[8, 23])  # cell (8, 23) went 2 down and 3 left
    assert torch.equal(moved_grid[0, 20], grid[0, 23])  # rows shifted in repeat the edge
    rows, cols = torch.nonzero(moved_mask == LUNG, as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (108, 147, 48, 107)  # 4 px per cell
    assert (moved_mask[:8] == IGNORE).all() and (moved_mask[:, -12:] == IGNORE).all()
    # (C, h, w) embeddings of the decoder profile move the same way
    embedding = features.T.reshape(3, 64, 64)
    moved_embedding, _ = shifted(embedding, mask, 2, -3)
    assert torch.equal(moved_embedding[:, 10, 20], embedding[:, 8, 23])


def test_training_items_are_shifted_each_epoch_and_validation_items_never():
    cache = EmbeddingCache(torch.randn(2, 64 * 64, 4).half(), torch.full((2, 256, 256), LUNG, dtype=torch.uint8),
                           [(256, 256)] * 2, ["a#0", "b#0"])
    train = CachedEmbeddingDataset(cache, True, seed=0, shift_cells=2)
    seen = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        seen.add(int((train[0]["valid"] == 0).sum()))
    assert len(seen) > 1  # different shifts, different ignored margins
    assert torch.equal(CachedEmbeddingDataset(cache, False, shift_cells=2)[0]["image"], cache.embeddings[0].float())


def test_the_border_weight_counts_mistakes_at_the_border_more():
    target = torch.zeros(1, 1, 64, 64)
    target[..., 16:48, 16:48] = 1
    band = border_band(target, 5)
    assert band[0, 0, 32, 32] == 0 and band[0, 0, 16, 32] == 1 and band[0, 0, 5, 5] == 0
    valid = torch.ones_like(target)
    logits = (target * 2 - 1) * 6
    logits[..., 14:16, 16:48] = 6  # wrong just outside the border: the clinic's line is 2 px higher
    plain = bce_dice_loss(logits, target, valid)
    weighted = bce_dice_loss(logits, target, valid, border_weight=4.0)
    assert weighted > plain
    assert torch.isclose(bce_dice_loss(logits, target, valid, border_weight=0.0), plain)
