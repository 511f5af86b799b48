"""Backbone registry and safe weight loading: LiteMedSAM pretrained, SAM ViT paths on random weights."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from core.models import sam_vit
from core.models.artifact import write_model_dir
from core.models.errors import ModelLoadError
from core.models.loading import load_model
from core.models.registry import build_backbone, config_of
from core.models.safe_weights import read_state_dict


def test_lite_medsam_pretrained_loads_with_provenance():
    loaded = load_model("lite_medsam")
    assert loaded.image_size == 256
    assert loaded.info.backbone == "lite_medsam" and loaded.info.precision == "fp32"
    assert len(loaded.info.weights_sha256) == 64
    params = sum(p.numel() for p in loaded.module.parameters())
    assert 9.5e6 < params < 10.2e6  # LiteMedSAM is 9.8 M parameters


def test_official_vit_names_need_a_checkpoint_path():
    with pytest.raises(ModelLoadError, match="give the checkpoint file"):
        load_model("sam_vit_b")


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ModelLoadError, match="known names: default, lite_medsam"):
        load_model("no_such_model")


def _tiny_vit():
    torch.manual_seed(0)
    return sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG)


def test_tiny_vit_runs_encoder_and_decoder():
    model = _tiny_vit()
    images = torch.rand(2, 1, 256, 256) * 255
    boxes = torch.tensor([[10.0, 10.0, 200.0, 220.0]] * 2)
    logits = model(images, boxes)
    assert logits.shape == (2, 1, 64, 64)
    assert torch.isfinite(logits).all()


def test_config_of_recovers_the_vit_architecture():
    model = _tiny_vit()
    assert config_of(model) == sam_vit.TINY_TEST_CONFIG.to_json()


@pytest.mark.slow
def test_vit_b_checkpoint_at_1024_loads_at_512_with_resized_position_embeddings(tmp_path):
    """A real-shaped ViT-B checkpoint (random weights) from a user path, run at the paper's 512 px."""
    torch.manual_seed(0)
    full = sam_vit.build("sam_vit_b", sam_vit.VARIANTS["sam_vit_b"])  # 1024 px layout, like the official file
    path = tmp_path / "sam_vit_b_random.pth"
    torch.save(full.state_dict(), path)
    loaded = load_model(str(path))  # variant recognised from the tensors
    assert loaded.info.backbone == "sam_vit_b" and loaded.image_size == 1024
    small = build_backbone("sam_vit_b", path, {**sam_vit.VARIANTS["sam_vit_b"].to_json(), "image_size": 512})
    assert small.image_encoder.pos_embed.shape == (1, 32, 32, 768)
    with torch.no_grad():
        logits = small(torch.rand(1, 1, 512, 512) * 255, torch.tensor([[0.0, 0.0, 511.0, 511.0]]))
    assert logits.shape == (1, 1, 128, 128) and torch.isfinite(logits).all()


def test_mismatched_checkpoint_is_refused_naming_the_tensor(tmp_path):
    state = _tiny_vit().state_dict()
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 7)
    del state["prompt_encoder.not_a_point_embed.weight"]
    path = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(ModelLoadError) as error:
        sam_vit.build("sam_vit_b", sam_vit.TINY_TEST_CONFIG, path)
    message = str(error.value)
    assert "bad.safetensors" in message and "\n" not in message
    assert "prompt_encoder.not_a_point_embed.weight" in message
    assert "mask_decoder.iou_token.weight (2, 7) vs expected (1, 256)" in message


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    checkpoint = tmp_path / "evil.pth"
    torch.save({"weight": _Payload()}, checkpoint)  # a torch checkpoint that smuggles a call
    raw = tmp_path / "evil_raw.pth"
    with raw.open("wb") as handle:
        pickle.dump({"weight": _Payload()}, handle)  # a bare pickle
    with pytest.raises(ModelLoadError, match="refused, the file holds more than plain weights"):
        read_state_dict(checkpoint)
    with pytest.raises(ModelLoadError, match="evil_raw.pth"):
        read_state_dict(raw)
    assert "code ran" not in capsys.readouterr().out


def test_non_weight_files_are_refused_clearly(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelLoadError, match="garbage.pth: not a readable PyTorch weight file"):
        read_state_dict(garbage)
    with pytest.raises(ModelLoadError, match="not a LiteMedSAM or SAM ViT"):
        other = tmp_path / "other.safetensors"
        save_file({"x": torch.zeros(2)}, str(other))
        load_model(str(other))


def test_model_directory_round_trip_and_tamper_refusal(tmp_path):
    model = _tiny_vit()
    card = {"name": "tiny", "version": "1", "backbone": "sam_vit_b", "precision": "fp32",
            "backbone_config": sam_vit.TINY_TEST_CONFIG.to_json()}
    out = write_model_dir(tmp_path / "tiny", card, model.state_dict())
    loaded = load_model(str(out))
    assert loaded.info.name == "tiny" and loaded.info.label == "tiny 1"
    images, boxes = torch.rand(1, 1, 256, 256) * 255, torch.tensor([[0.0, 0.0, 255.0, 255.0]])
    with torch.no_grad():
        assert torch.equal(loaded.module(images, boxes), model(images, boxes))
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="does not match the model card"):
        load_model(str(out))


def test_replacing_a_model_directory_is_atomic(tmp_path):
    model = _tiny_vit()
    card = {"name": "tiny", "version": "1", "backbone": "sam_vit_b", "precision": "fp32",
            "backbone_config": sam_vit.TINY_TEST_CONFIG.to_json()}
    write_model_dir(tmp_path / "m", card, model.state_dict())
    write_model_dir(tmp_path / "m", {**card, "version": "2"}, model.state_dict())
    assert load_model(str(tmp_path / "m")).info.version == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging or backup folders left
