"""Model packages an attacker crafted: a swapped graph, external data, a sparse member, unsigned.

Real packages exported from the shipped model, real ONNX graphs, real Ed25519 keys made in a temp
folder (the vendor's private key is never in the repository; its public key ships in resources/keys).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from core.cli import main
from core.models import catalog
from core.models.card import read_model_card
from core.models.errors import ModelLoadError
from core.models.loading import bundled_model_dirs
from core.models.onnx_form import verified_graphs
from core.models.onnx_safety import check_self_contained
from core.models.package import PACKAGE_FORMAT, UntrustedPackageError, export_package, import_package
from core.models.signing import SIGNATURE_FILE, verify_model_dir
from tests.full_disk import small_tmpfs


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _installed(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir() if p.name != "active.json") if models.is_dir() else []


def _swapped_graph_folder(tmp_path: Path, keep_signature: bool) -> Path:
    """The shipped model with its decoder graph swapped for another valid graph (a decoder whose
    output is inverted), and model.json's sha256 rewritten to match: what issue 29 installed silently."""
    folder = tmp_path / "swapped"
    shutil.copytree(bundled_model_dirs()["default"], folder)
    graph = onnx.load_from_string((folder / "decoder.onnx").read_bytes())
    first_output = graph.graph.output[0].name
    node = helper.make_node("Neg", [first_output + "_orig"], [first_output])
    for n in graph.graph.node:
        n.output[:] = [first_output + "_orig" if o == first_output else o for o in n.output]
    graph.graph.node.append(node)
    data = graph.SerializeToString()
    (folder / "decoder.onnx").write_bytes(data)
    card = json.loads((folder / "model.json").read_text())
    card["onnx"]["graphs"]["decoder"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "model.json").write_text(json.dumps(card, indent=2))
    if not keep_signature:
        (folder / SIGNATURE_FILE).unlink()
    return folder


def test_the_shipped_model_is_signed_by_the_vendor_key():
    status = verify_model_dir(bundled_model_dirs()["default"])
    assert status.trusted and status.signer == "AdaQAT vendor", status  # re-sign after re-exporting it


def test_a_swapped_graph_with_rewritten_hashes_is_refused(home, tmp_path, capsys):
    signed = export_package(_swapped_graph_folder(tmp_path / "a", keep_signature=True), tmp_path / "signed")[0]
    assert main(["models", "import", str(signed), "--allow-unsigned"]) == 2  # a broken signature: never
    err = capsys.readouterr().err
    assert "altered after it was signed" in err and err.count("\n") == 1
    unsigned = export_package(_swapped_graph_folder(tmp_path / "b", keep_signature=False), tmp_path / "unsigned")[0]
    assert main(["models", "import", str(unsigned)]) == 2
    err = capsys.readouterr().err
    assert "unsigned" in err and "--allow-unsigned" in err and err.count("\n") == 1
    assert _installed(home) == []
    # with explicit consent it installs, and every listing says it is unsigned
    assert main(["models", "import", str(unsigned), "--allow-unsigned"]) == 0
    assert "unsigned" in capsys.readouterr().out
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "[unsigned]" in listing and "AdaQAT vendor (key" in listing


def test_a_clinic_key_signs_and_must_be_trusted(home, tmp_path, capsys):
    keys = tmp_path / "keys"
    assert main(["models", "keygen", "--signer", "Ward B clinic", "--out", str(keys)]) == 0
    private, public = keys / "ward-b-clinic.private.pem", keys / "ward-b-clinic.public.json"
    assert private.stat().st_mode & 0o777 == 0o600 and public.is_file()
    out = tmp_path / "clinic"
    assert main(["models", "export", "default", str(out), "--sign-key", str(private), "--signer", "Ward B clinic"]) == 0
    package = out.with_name("clinic.adaqat-model")
    with tarfile.open(package) as archive:
        assert all(b"PRIVATE" not in archive.extractfile(m).read() for m in archive.getmembers() if m.isfile())
    capsys.readouterr()
    with pytest.raises(UntrustedPackageError, match="unknown key"):
        import_package(package)
    assert main(["models", "trust", str(public)]) == 0
    installed = import_package(package)
    status = verify_model_dir(installed)
    assert status.trusted and status.signer == "Ward B clinic"
    assert main(["models", "rename", installed.name, "Ward B model"]) == 0  # a label does not break it
    assert verify_model_dir(installed).trusted


def test_a_graph_with_external_data_is_refused(tmp_path, monkeypatch):
    secret = tmp_path / "cwd" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    weights = helper.make_tensor("w", TensorProto.FLOAT, [4], np.zeros(4, np.float32))
    weights.ClearField("float_data")
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="secret.bin")
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weights])
    data = helper.make_model(graph).SerializeToString()
    with pytest.raises(ModelLoadError, match="refers to data outside the model package.*secret.bin"):
        check_self_contained(tmp_path / "decoder.onnx", data)
    constant = helper.make_node("Constant", [], ["c"], value=weights)  # the same, hidden in a node attribute
    graph = helper.make_graph([constant, helper.make_node("Add", ["x", "c"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    with pytest.raises(ModelLoadError, match="outside the model package"):
        check_self_contained(tmp_path / "decoder.onnx", helper.make_model(graph).SerializeToString())
    # end to end: a model folder whose card lists that graph with its true sha256 is refused on load
    folder = tmp_path / "model"
    shutil.copytree(bundled_model_dirs()["default"], folder)
    (folder / "decoder.onnx").write_bytes(data)
    card = json.loads((folder / "model.json").read_text())
    card["onnx"]["graphs"]["decoder"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "model.json").write_text(json.dumps(card))
    monkeypatch.chdir(secret.parent)
    with pytest.raises(ModelLoadError, match="outside the model package"):
        verified_graphs(folder, read_model_card(folder))
    verified_graphs(bundled_model_dirs()["default"], read_model_card(bundled_model_dirs()["default"]))  # genuine: fine


def test_a_sparse_member_is_refused_before_anything_is_extracted(home, tmp_path, capsys):
    """18 MiB on disk, 6 GiB declared: refused from the member sizes, nothing written."""
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to write a sparse member")
    source = tmp_path / "src"
    shutil.copytree(bundled_model_dirs()["default"], source)
    huge = 6 * 2**30
    with open(source / "model.safetensors", "r+b") as handle:
        handle.truncate(huge)  # a hole: no disk space used
    listed = {p.name: {"sha256": "0" * 64, "size": p.stat().st_size} for p in source.iterdir()}
    (source / "package.json").write_text(json.dumps({"format": PACKAGE_FORMAT, "files": listed}))
    package = tmp_path / "sparse.adaqat-model"
    names = ["package.json", *sorted(listed)]
    subprocess.run(["tar", "--sparse", "--format=pax", "-cf", str(package), "-C", str(source), *names], check=True)
    assert package.stat().st_size < 64 * 2**20
    (source / "model.safetensors").unlink()
    assert main(["models", "import", str(package)]) == 2
    err = capsys.readouterr().err
    assert ("sparse" in err or "more than the" in err) and err.count("\n") == 1, err
    assert _installed(home) == [] and not list((home / "models").glob(".import.*"))


def test_the_models_window_shows_the_signer_and_asks_before_an_unsigned_import(qtbot, home, tmp_path):
    from app.dialogs.models_dialog import COLUMNS, ModelsDialog

    dialog = ModelsDialog()
    qtbot.addWidget(dialog)
    column = COLUMNS.index("Signed by")
    assert dialog.table.item(0, column).text() == "AdaQAT vendor (verified)"
    unsigned = export_package(_swapped_graph_folder(tmp_path, keep_signature=False), tmp_path / "unsigned")[0]
    asked = []
    assert not dialog.import_file(unsigned, confirm=lambda text: asked.append(text) or False)
    assert asked and "unsigned" in asked[0] and "Not installed" in dialog.message.text()
    assert len(dialog.records) == 1
    assert dialog.import_file(unsigned, confirm=lambda text: True)
    assert len(dialog.records) == 2
    cells = sorted(dialog.table.item(row, column).text() for row in range(2))
    assert cells == ["AdaQAT vendor (verified)", "unsigned"]


def test_a_full_disk_during_activate_leaves_no_hidden_copy(tmp_path, monkeypatch, capsys):
    """`adaqat models activate RUN_FOLDER` with the models folder on a real 20 MiB tmpfs (the model is 32 MB)."""
    source = tmp_path / "run"
    shutil.copytree(bundled_model_dirs()["default"], source)
    card = json.loads((source / "model.json").read_text())
    card["version"] = "full-disk-test"
    (source / "model.json").write_text(json.dumps(card))
    with small_tmpfs("20m") as disk:
        monkeypatch.setenv("ADAQAT_HOME", str(disk / "home"))
        assert main(["models", "activate", str(source)]) == 2
        err = capsys.readouterr().err
        assert "No space left on device" in err and err.count("\n") == 1 and "Traceback" not in err
        models = disk / "home" / "models"
        assert [p.name for p in models.iterdir() if p.name.startswith(".")] == []  # no hidden partial copy
        assert catalog.active_model() != str(source)
        assert shutil.disk_usage(disk).used < 2 * 2**20
