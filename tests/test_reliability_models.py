"""Model files: loading never runs code from the file, packages are checked by sha256, tampering is refused.

tests/test_models.py covers a pickled payload in a raw checkpoint, garbage files and one flipped byte
in a model directory; tests/test_int8.py a tampered INT8 weights file and missing/mistyped tensors.
Here: the shipped package itself, a payload *with a matching sha256* (the hash proves integrity,
not safety), paths in the card that point outside the package, a hostile safetensors header, a
poisoned ``--resume`` checkpoint, and a scan of the source for any unsafe deserialiser.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
from pathlib import Path

import pytest
import torch

from core.models.artifact import CARD_FILE, write_model_dir
from core.models.card import read_model_card
from core.models.errors import ModelLoadError
from core.models.loading import bundled_model_dirs, load_model
from core.models.safe_weights import read_state_dict, sha256_of

REPO = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this creates ``marker``: if the file exists afterwards, code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def shipped(tmp_path) -> Path:
    """A copy of the bundled default model package."""
    bundled = bundled_model_dirs()
    if "default" not in bundled:
        pytest.skip("no bundled default model in this checkout")
    return Path(shutil.copytree(bundled["default"], tmp_path / "default"))


def test_the_shipped_model_is_verified_by_sha256(shipped):
    card = read_model_card(shipped)
    weights = shipped / card.weights_file
    assert re.fullmatch(r"[0-9a-f]{64}", card.weights_sha256)
    assert sha256_of(weights) == card.weights_sha256
    assert load_model(str(shipped)).info.weights_sha256 == card.weights_sha256

    size = weights.stat().st_size
    with weights.open("r+b") as handle:  # one byte in the middle of the tensors
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(ModelLoadError, match=r"model.safetensors: sha256 .* does not match the model card"):
        load_model(str(shipped))


def test_truncated_or_replaced_weights_are_refused(shipped, tmp_path):
    card = read_model_card(shipped)
    weights = shipped / card.weights_file
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 3])  # an interrupted copy
    with pytest.raises(ModelLoadError, match="does not match the model card"):
        load_model(str(shipped))
    other = write_model_dir(tmp_path / "other", {"name": "x", "version": "1", "backbone": card.backbone,
                                                 "precision": "fp32"}, {"w": torch.zeros(3)})
    shutil.copy(other / "model.safetensors", weights)  # a valid safetensors file, not the one the card names
    with pytest.raises(ModelLoadError, match="does not match the model card"):
        load_model(str(shipped))


def test_a_pickle_with_a_matching_sha256_is_still_never_unpickled(tmp_path):
    """Someone rewrites both the weights and the card's hash: the hash passes, the loader still refuses."""
    marker = tmp_path / "code-ran"
    package = tmp_path / "evil"
    package.mkdir()
    torch.save({"image_encoder.patch_embed.seq.0.c.weight": _Payload(marker)}, package / "weights.pth")
    card = {"format": "adaqat-model/1", "name": "evil", "version": "1", "backbone": "lite_medsam",
            "precision": "fp32", "weights_file": "weights.pth", "weights_sha256": sha256_of(package / "weights.pth")}
    (package / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="refused, the file holds more than plain weights"):
        load_model(str(package))
    with pytest.raises(ModelLoadError, match="refused"):
        load_model(str(package / "weights.pth"))  # the same file given directly as a checkpoint
    assert not marker.exists()


@pytest.mark.parametrize("weights_file", ["../outside.safetensors", "/etc/passwd", "sub/../model.safetensors", ""])
def test_card_cannot_point_outside_its_package(tmp_path, weights_file):
    outside = write_model_dir(tmp_path / "real", {"name": "x", "version": "1", "backbone": "lite_medsam",
                                                  "precision": "fp32"}, {"w": torch.zeros(3)})
    shutil.copy(outside / "model.safetensors", tmp_path / "outside.safetensors")
    package = tmp_path / "pkg"
    package.mkdir()
    shutil.copy(outside / "model.safetensors", package / "model.safetensors")
    card = json.loads((outside / CARD_FILE).read_text())
    card["weights_file"] = weights_file
    (package / CARD_FILE).write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="'weights_file' must"):
        load_model(str(package))


@pytest.mark.parametrize("header_length", [2**62, 10**9, 5])
def test_hostile_safetensors_header_is_refused_without_allocating_it(tmp_path, header_length):
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(struct.pack("<Q", header_length) + b'{"w": {"dtype": "F32", "shape": [1000000000000], '
                     b'"data_offsets": [0, 4000000000000]}}')
    with pytest.raises(ModelLoadError, match="hostile.safetensors: not a readable safetensors file"):
        read_state_dict(path)


def test_hostile_model_card_is_refused(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    for text, pattern in [("{", "unreadable model card"), ("[1, 2]", "not a model card"),
                          ('{"format": "adaqat-model/1"}', "'name' must be non-empty text"),
                          ("\udcff".encode("utf-8", "surrogatepass").decode("latin-1"), "unreadable model card")]:
        (package / CARD_FILE).write_text(text, encoding="latin-1")
        with pytest.raises(ModelLoadError, match=pattern):
            load_model(str(package))


def test_a_poisoned_resume_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    """``adaqat train --resume`` reads ``stage1_checkpoint.pt`` from the output folder: never unpickled."""
    from core.cli import main
    from tests.shared_data import shared_file

    manifest = shared_file("cxr-lungs", "manifest.csv")
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "code-ran"
    torch.save({"epochs": 2, "model": _Payload(marker)}, out / "stage1_checkpoint.pt")
    code = main(["train", "--data", str(manifest), "--out", str(out), "--from", "lite_medsam", "--stages", "1", "--epochs", "1",
                 "--batch-size", "2", "--max-train-images", "2", "--max-val-images", "1", "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: {out / 'stage1_checkpoint.pt'}: refused, the checkpoint holds more than plain tensors; "
        "delete it or train without --resume"]
    assert "Traceback" not in err and not (out / "model-fp32").exists()


UNSAFE = [
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\b(?:dill|cloudpickle|joblib|marshal|shelve)\b"), "another unpickler"),
    (re.compile(r"\byaml\.(?:unsafe_)?load\("), "yaml.load"),
    (re.compile(r"(?<![\w.])(?<!def )(?:eval|exec|compile|__import__)\("), "eval/exec of text"),  # not a method named eval
    (re.compile(r"\bimportlib\.import_module\("), "imports chosen at run time"),
]


def test_no_unsafe_deserialiser_in_the_product_source():
    """Every ``torch.load`` passes ``weights_only=True``, every ``np.load`` ``allow_pickle=False``, and
    nothing else that can run code from data is used."""
    problems = []
    for path in sorted([*REPO.joinpath("core").rglob("*.py"), *REPO.joinpath("app").rglob("*.py")]):
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        code = re.sub(r'("""|\'\'\')[\s\S]*?\1', "", code)  # docstrings talk about these; code must not use them
        where = path.relative_to(REPO)
        for call in re.finditer(r"\btorch\.load\(([^()]*(?:\([^()]*\))?[^()]*)\)", code):
            if "weights_only=True" not in call.group(1):
                problems.append(f"{where}: torch.load without weights_only=True")
        for call in re.finditer(r"\bnp\.load\(([^)]*)\)", code):
            if "allow_pickle=False" not in call.group(1):
                problems.append(f"{where}: np.load without allow_pickle=False")
        for pattern, what in UNSAFE:
            if pattern.search(code):
                problems.append(f"{where}: {what}")
    assert not problems, problems
    assert "weights_only=True" in (REPO / "core/models/safe_weights.py").read_text()
