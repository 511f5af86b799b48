"""Models as one file between clinic PCs, and the catalog's actions (roll back, rename, delete).

Export -> import installs the same model; a tampered, cut-short or incompatible package is refused
with the reason and nothing is installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from core.cli import main
from core.models import catalog
from core.models.loading import bundled_model_dirs, load_model
from core.models.package import PACKAGE_FORMAT, export_package, import_package


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped model as a package, and the files inside it (name -> bytes)."""
    folder = bundled_model_dirs()["default"]
    out, digest = export_package(folder, tmp_path_factory.mktemp("pkg") / "shipped")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return out, digest, files


def pack(path, files: dict[str, bytes], manifest_files: dict | None = None, extra_members=()):
    """A package built by hand (what another program or a tamperer would write)."""
    listed = manifest_files if manifest_files is not None else {
        n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in files.items()}
    manifest = json.dumps({"format": PACKAGE_FORMAT, "files": listed}).encode()
    with tarfile.open(path, "w") as archive:
        for name, data in [("package.json", manifest), *files.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info in extra_members:
            archive.addfile(info)
    return path


def installed_folders(home):
    models = home / "models"
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


def test_export_then_import_installs_the_same_model(home, exported, capsys):
    out, digest, files = exported
    assert out.name.endswith(".adaqat-model") and len(digest) == 64
    assert main(["models", "import", str(out), "--sha256", digest, "--activate"]) == 0
    installed = home / "models" / "cxr-lungs-adaqat-2026-11-28+d0d1dda5-int8"
    assert (installed / "model.safetensors").read_bytes() == files["model.safetensors"]
    loaded = load_model(str(installed))
    assert loaded.info.weights_sha256 == hashlib.sha256(files["model.safetensors"]).hexdigest()
    assert catalog.active_model() == str(installed)
    assert import_package(out) == installed  # importing it again is harmless
    assert "installed:" in capsys.readouterr().out


def _card_with(files, **changes) -> dict[str, bytes]:
    card = json.loads(files["model.json"])
    card.update(changes)
    return {**files, "model.json": json.dumps(card).encode()}


@pytest.mark.parametrize("case, reason", [
    ("flipped weight byte", "sha256 of 'model.safetensors' does not match the package list"),
    ("weights and list both replaced", "does not match the model card"),
    ("newer card format", "not an adaqat-model/1 model card"),
    ("unknown backbone", "backbone 'sam_vit_z' is not supported"),
    ("unknown int8 layer", "is not a Linear layer"),
    ("path in a member name", "unexpected member '../evil.json'"),
    ("link member", "is not a plain file"),
    ("cut short", "not a readable model package"),
    ("not a package", "not a readable model package"),
    ("a tar of something else", "no readable package.json"),
    ("missing weights", "the package lacks decoder.onnx, encoder.onnx, model.safetensors"),
])
def test_a_tampered_or_incompatible_package_is_refused_and_nothing_is_installed(home, exported, tmp_path, case,
                                                                               reason, capsys):
    out, _, files = exported
    bad = tmp_path / "bad.adaqat-model"
    weights = files["model.safetensors"]
    if case == "flipped weight byte":
        listed = {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in files.items()}
        pack(bad, {**files, "model.safetensors": weights[:-1] + bytes([weights[-1] ^ 1])}, listed)
    elif case == "weights and list both replaced":
        pack(bad, {**files, "model.safetensors": weights[:-1] + bytes([weights[-1] ^ 1])})
    elif case == "newer card format":
        pack(bad, _card_with(files, format="adaqat-model/2"))
    elif case == "unknown backbone":
        pack(bad, _card_with(files, backbone="sam_vit_z"))
    elif case == "unknown int8 layer":
        card = json.loads(files["model.json"])
        pack(bad, _card_with(files, int8=dict(card["int8"], layers=[*card["int8"]["layers"], "image_encoder.neck.0"])))
    elif case == "path in a member name":
        evil = {"../evil.json": b"{}"}
        listed = {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in {**files, **evil}.items()}
        pack(bad, {**files, **evil}, listed)
    elif case == "link member":
        link = tarfile.TarInfo("model.safetensors")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        pack(bad, {"model.json": files["model.json"]}, None, [link])
    elif case == "cut short":
        bad.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    elif case == "not a package":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2000))
    elif case == "a tar of something else":
        with tarfile.open(bad, "w") as archive:
            archive.add(__file__, arcname="notes.txt")
    elif case == "missing weights":
        listed = {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in files.items()}
        pack(bad, {"model.json": files["model.json"]}, listed)
    assert main(["models", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert reason in err and str(bad) in err and err.count("\n") == 1 and "Traceback" not in err
    assert [n for n in installed_folders(home) if n != "active.json"] == []  # nothing installed, no staging left


def test_a_wrong_sha256_is_refused_before_reading(home, exported, capsys):
    out, digest, _ = exported
    assert main(["models", "import", str(out), "--sha256", "0" * 64]) == 2
    assert "sha256 does not match the one given" in capsys.readouterr().err


def test_activate_roll_back_rename_and_delete(home, exported, capsys):
    out, _, _ = exported
    installed = import_package(out)
    assert main(["models", "activate", str(installed)]) == 0 and catalog.active_model() == str(installed)
    assert main(["models", "delete", installed.name]) == 2  # the active model
    assert "activate another model first" in capsys.readouterr().err
    assert main(["models", "delete", "default"]) == 2
    assert "cannot be deleted" in capsys.readouterr().err
    assert main(["models", "rename", installed.name, "Ward A  model"]) == 0
    records = {r.path: r for r in catalog.list_models()[0]}
    assert records[installed].card.display_name == "Ward A model" and records[installed].active
    assert load_model(str(installed)).info.name == "cxr-lungs-adaqat"  # provenance keeps the real name
    assert main(["models", "rollback"]) == 0 and catalog.active_model() == "default"
    assert main(["models", "rollback"]) == 2  # nothing earlier left
    assert "no earlier model" in capsys.readouterr().err
    assert main(["models", "delete", installed.name]) == 0 and not installed.exists()
