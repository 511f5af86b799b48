"""``adaqat models``: the catalog the command line and the viewer share (bundled + installed, one active)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAQAT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def small_model_dir(folder: Path) -> Path:
    from core.models import lite_medsam
    from core.models.artifact import write_model_dir

    card = {"name": "clinic-test", "version": "1", "backbone": "lite_medsam", "backbone_config": {"image_size": 256},
            "precision": "fp32", "parent": {"name": "cxr-lungs-adaqat", "version": "x", "weights_sha256": "ab" * 32}}
    return write_model_dir(folder, card, lite_medsam.build("pretrained").state_dict())


def listed(capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_fresh_install_lists_the_shipped_model_as_active(home, capsys):
    records = listed(capsys)
    assert [r["name"] for r in records if r["active"]] == ["cxr-lungs-adaqat"]
    shipped = records[0]
    assert shipped["precision"] == "int8" and shipped["size_bytes"] > 1_000_000
    assert shipped["trainable_params"] and shipped["total_params"] > shipped["trainable_params"]
    assert shipped["confidence_calibration"] is None  # the shipped model is the one the confidence was fitted on


def test_activate_installs_a_folder_and_every_default_follows_it(home, tmp_path, capsys, viewer_settings):
    from app.services.settings import Settings
    from core.models.catalog import active_model
    from core.training.parent import load_parent

    source = small_model_dir(tmp_path / "run" / "model")
    assert main(["models", "activate", str(source)]) == 0
    installed = home / "models" / "clinic-test-1"
    assert (installed / "model.json").is_file() and active_model() == str(installed)
    records = listed(capsys)
    assert [r["path"] for r in records if r["active"]] == [str(installed)]
    assert next(r for r in records if r["active"])["parent"]["name"] == "cxr-lungs-adaqat"
    assert load_parent(None)[1].name == "clinic-test"  # adaqat train --from (default)
    assert Settings().model() == str(installed)  # the viewer, until the user picks another model there
    # the source folder may go: the active model is the installed copy
    import shutil

    shutil.rmtree(tmp_path / "run")
    assert main(["models", "activate", "default"]) == 0 and active_model() == "default"
    assert [r["name"] for r in listed(capsys) if r["active"]] == ["cxr-lungs-adaqat"]


def test_activate_refuses_what_is_not_a_model(home, tmp_path, capsys):
    assert main(["models", "activate", "no-such-model"]) == 2
    assert "not a bundled model name or a model folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["models", "activate", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert not (home / "models" / "active.json").exists()
