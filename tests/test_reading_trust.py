"""Trust and honesty: Help > About on the real window, no ONNX Runtime device ID, evaluate's units.

About states the intended use (decision support for lung outlines, not diagnosis), the model in use
and its training data; a real ``adaqat segment`` run through ONNX Runtime leaves no ``deviceid`` under
the user's home; ``adaqat evaluate`` explains NSD and gives HD95 in mm for images with a pixel spacing,
never averaged with pixels.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.shared_data import shared_file, write_dicom

ROOT = Path(__file__).resolve().parents[1]


def adaqat(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "core.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_help_about_states_intended_use_the_model_and_its_training_data(qtbot, make_window):
    window = make_window()
    shown: list[str] = []

    def read_and_close() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            shown.append(box.text())
            box.accept()

    QTimer.singleShot(200, read_and_close)
    window.acts.about.trigger()  # the modal About box, as the menu shows it
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    text = shown[0]
    assert "Decision support for lung segmentation" in text and "not a diagnostic device" in text
    info = window.segmentation.model_info
    assert f"{info.name} {info.version}" in text and "INT8" in text
    assert "Training data" in text and "training images" in text  # from the model's own card
    assert "Mask confidence" in text and "the shared fit" in text  # the shipped model: no calibration of its own
    assert "no internet connection" in text and "ORT_DISABLE_TELEMETRY" in text


def test_onnx_runtime_writes_no_device_id_under_the_home_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    image = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[0]
    done = adaqat("segment", image, "--out", tmp_path / "out", "--json", env=env)
    assert done.returncode == 0, done.stderr[-1500:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["runtime"] == "onnxruntime"  # the session was made
    assert not (home / ".cache" / "Microsoft").exists(), sorted(str(p) for p in home.rglob("*"))


def test_evaluate_explains_nsd_and_gives_hd95_in_mm_where_spacing_is_known(tmp_path):
    source = shared_file("cxr-lungs")
    rows = [r for r in csv.DictReader((source / "manifest.csv").open()) if r["split"] == "test"][:2]
    lines = ["id,image,mask,split"]
    for row in rows:  # each image twice: as a DICOM with 0.2 mm pixels, and as the JPEG (no spacing)
        gray = cv2.imread(str(source / row["image"]), cv2.IMREAD_GRAYSCALE)
        write_dicom(tmp_path / f"{row['id']}.dcm", gray, PixelSpacing=[0.2, 0.2], WindowCenter=127.5, WindowWidth=256)
        shutil.copy(source / row["image"], tmp_path / f"{row['id']}.jpg")
        shutil.copy(source / row["mask"], tmp_path / f"{row['id']}.png")
        lines += [f"{row['id']}-dcm,{row['id']}.dcm,{row['id']}.png,test", f"{row['id']}-jpg,{row['id']}.jpg,{row['id']}.png,test"]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")

    text = adaqat("evaluate", "--data", manifest, "--split", "test")
    assert text.returncode == 0, text.stderr[-1500:]
    table = {line.split()[0]: line for line in text.stdout.splitlines() if line.strip()}
    assert "hd95_mm" in table and "hd95_px" in table and "hd95" not in table  # one unit per row
    assert "NSD (normalized surface Dice) at 2 mm or 2 px" in text.stdout and "within" in text.stdout
    assert "in mm on the 2 image(s) with a pixel spacing" in text.stdout

    report = json.loads(adaqat("evaluate", "--data", manifest, "--split", "test", "--json").stdout)
    model = report["models"][0]
    units = {row["id"]: row["unit"] for row in model["per_image"]}
    assert all(units[k] == ("mm" if k.endswith("dcm") else "px") for k in units)
    assert model["summary_by_unit"]["hd95_mm"]["n"] == 2 and model["summary_by_unit"]["hd95_px"]["n"] == 2
    by_id = {row["id"]: row for row in model["per_image"]}
    for row in rows:  # the same image: millimetres are 0.2 x pixels (give or take the mask's few-pixel changes)
        mm, px = by_id[f"{row['id']}-dcm"]["hd95"], by_id[f"{row['id']}-jpg"]["hd95"]
        assert 0.1 * px <= mm <= 0.3 * px, (mm, px)
    assert any(note.startswith("NSD (normalized surface Dice)") for note in model["notes"])
