"""The command line: --screenshot end to end (file -> model -> overlay -> PNG), and its failure exits."""

from __future__ import annotations

from PySide6.QtGui import QImage

from app.main import main, parse_args
from tests.shared_data import shared_file


def test_screenshot_waits_for_the_mask_and_exits_zero(tmp_path, qapp, viewer_settings, capsys):
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[3]
    shot = tmp_path / "shot.png"
    code = main([str(image), "--screenshot", str(shot), "--store", str(tmp_path / "store")])
    assert code == 0, capsys.readouterr()
    picture = QImage(str(shot))
    assert not picture.isNull() and picture.width() >= 800


def test_screenshot_of_an_unreadable_file_fails_with_a_message(tmp_path, qapp, viewer_settings, capsys):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    code = main([str(bad), "--screenshot", str(tmp_path / "x.png"), "--store", str(tmp_path / "store")])
    assert code != 0
    assert "screenshot:" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_demo_without_samples_and_arguments(tmp_path, qapp, viewer_settings, capsys, monkeypatch):
    monkeypatch.setattr("core.paths.sample_studies_dir", lambda: tmp_path / "none")
    assert main(["--demo", "--screenshot", str(tmp_path / "x.png")]) == 2
    out = capsys.readouterr()
    assert "no bundled sample studies" in out.out and "nothing to open" in out.err
    args = parse_args(["a.dcm", "b.png", "--model", "lite_medsam", "--store", "/s"])
    assert args.files == ["a.dcm", "b.png"] and args.model == "lite_medsam" and args.store == "/s"


def test_screenshot_with_a_missing_model_fails_fast(tmp_path, qapp, viewer_settings, capsys):
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[3]
    code = main([str(image), "--model", str(tmp_path / "no-model"), "--screenshot", str(tmp_path / "x.png"),
                 "--store", str(tmp_path / "store")])
    assert code == 2
    assert "model unavailable" in capsys.readouterr().err
