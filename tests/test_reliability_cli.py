"""Issue 12, classes 2, 4, 6 and 7 (command line): nothing overwritten, the batch goes on, one line each.

Real CLI (``core.cli.main`` in process; a subprocess where a hang or a closed pipe must be seen from
outside), the real default model, files built here. stderr is read at the file-descriptor level, so
library loggers and tracebacks would show.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from core.cli import main
from tests.reliability_files import chest_like, deflated_dx, fifo, read_only_folder
from tests.shared_data import shared_file, write_dicom

REPO = Path(__file__).resolve().parents[1]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dicom(path: Path, seed: int = 0) -> Path:
    return write_dicom(path, np.rint(chest_like(seed=seed)).astype(np.uint16), BitsStored=12, HighBit=11)


def _png(path: Path, seed: int = 0) -> Path:
    cv2.imwrite(str(path), np.rint(chest_like(lo=10, hi=240, seed=seed)).astype(np.uint8))
    return path


def _run(capfd, *argv) -> tuple[int, list[dict], list[str]]:
    code = main(list(map(str, argv)))
    out, err = capfd.readouterr()
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), err
    assert all(line.startswith(("error: ", "warning: ")) for line in lines), err  # one line per problem
    return code, records, [line for line in lines if line.startswith("error: ")]


# --- 2. never write over an input, never two inputs to one name -------------------------------------


def test_out_equal_to_the_input_folder_overwrites_nothing(tmp_path, capfd):
    folder = tmp_path / "study"
    folder.mkdir()
    inputs = [_dicom(folder / "chest.dcm"), _png(folder / "chest.png", 1), _png(folder / "Chest.PNG.png", 2),
              _png(folder / "other.png", 3)]
    before = {path: _digest(path) for path in inputs}
    code, records, errors = _run(capfd, "segment", folder, "--out", folder, "--json")
    assert code == 0 and not errors
    assert {path: _digest(path) for path in inputs} == before  # every input byte for byte
    outputs = [Path(record["output"]) for record in records]
    assert len(records) == len(inputs) and len({p.name.casefold() for p in outputs}) == len(inputs)
    assert not {p.resolve() for p in outputs} & {p.resolve() for p in inputs}
    by_input = {Path(r["input"]).name: Path(r["output"]).name for r in records}
    assert by_input["chest.dcm"] != by_input["chest.png"]
    for path in outputs:
        mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert mask.shape == (96, 80) and set(np.unique(mask)) <= {0, 255}


# --- 4. failed reads and writes do not stop the batch --------------------------------------------------


def test_bad_files_and_failed_writes_are_one_line_each_and_the_batch_goes_on(tmp_path, capfd):
    folder = tmp_path / "in"
    folder.mkdir()
    good = _dicom(folder / "good.dcm")
    blocked = _dicom(folder / "blocked.dcm", 1)
    cut = deflated_dx(folder, "cut.dcm", keep=0.5)
    long_name = _png(folder / ("n" * 246 + ".png"), 2)  # the mask name needs shortening to fit 255 bytes
    out = tmp_path / "out"
    (out / "blocked.png").mkdir(parents=True)  # a folder where the mask should go
    code, records, errors = _run(capfd, "segment", folder, "--out", out, "--json")
    assert code == 1
    assert {Path(r["input"]).name for r in records} == {good.name, long_name.name}
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors), errors
    assert any(str(cut) in line and "deflate" in line and "zlib" not in line for line in errors)
    assert any(str(blocked) in line and "mask was not written" in line for line in errors)
    written = Path(next(r["output"] for r in records if Path(r["input"]) == long_name))
    assert written.is_file() and len(os.fsencode(written.name)) <= 255


def test_read_only_out_and_out_that_is_a_file(tmp_path, capfd):
    source = _dicom(tmp_path / "a.dcm")
    out = tmp_path / "ro"
    out.mkdir()
    with read_only_folder(out):
        code, records, errors = _run(capfd, "segment", source, "--out", out)
    assert code == 1 and not records and len(errors) == 1
    assert "a.dcm" in errors[0] and "Read-only" in errors[0] and "choose a folder you can write to" in errors[0]
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, _records, errors = _run(capfd, "segment", source, "--out", a_file)
    assert code == 2 and errors == [f"error: {a_file}: --out is a file, not a folder; give a folder for the mask PNGs"]


# --- 6, 7. pipes, escape codes, a closed stdout (seen from outside) ----------------------------------


def _adaqat(*argv, **popen):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "core.cli", *map(str, argv)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def test_fifos_and_escape_codes_in_names_from_the_command_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    good = _dicom(folder / "good.dcm")
    pipes = [fifo(folder, "b.dcm"), fifo(folder, "IM0001")]
    evil = folder / "evil\x1b[2J\x1b]0;pwned\x07.dcm"
    evil.write_bytes(b"not a dicom" * 30)
    process = _adaqat("segment", folder, pipes[1], "--out", tmp_path / "out", "--json")
    try:
        out, err = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
        for pipe in pipes:  # release anything that did block
            try:
                os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
    text = err.decode("utf-8", "replace")
    assert process.returncode == 1, text
    assert "Traceback" not in text and "\x1b" not in text and "\x07" not in text
    lines = text.splitlines()
    assert sum("named pipe (FIFO)" in line for line in lines) == 2  # b.dcm (found) and IM0001 (named)
    assert any("evil\\x1b[2J\\x1b]0;pwned\\x07.dcm" in line for line in lines)
    assert [json.loads(line)["input"] for line in out.decode().splitlines()] == [str(good)]


def test_json_into_a_closed_pipe_ends_quietly(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(6):
        _png(folder / f"{index}.png", index)
    process = _adaqat("segment", folder, "--out", tmp_path / "out", "--json")
    first = process.stdout.readline()  # `| head -1`
    process.stdout.close()
    _out, err = process.communicate(timeout=300)
    assert json.loads(first)["input"].endswith("0.png")
    text = err.decode()
    assert "BrokenPipeError" not in text and "Traceback" not in text and "Exception ignored" not in text, text
    assert process.returncode == 141


# --- 7. evaluate on anti-aliased / JPEG masks and a Latin-1 manifest; train on a broken cache ---------


def test_evaluate_thresholds_soft_masks_and_reads_a_latin1_manifest(tmp_path, capfd):
    data = shared_file("cxr-lungs")
    with open(data / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test"][:3]
    lines = ["id,image,mask,split"]
    for index, row in enumerate(rows):
        truth = cv2.imread(str(data / row["mask"]), cv2.IMREAD_GRAYSCALE)
        image = tmp_path / f"café-{index}.jpg"  # named in UTF-8 on disk, written Latin-1 in the CSV
        image.write_bytes((data / row["image"]).read_bytes())
        if index == 0:
            soft, name = cv2.GaussianBlur(truth, (7, 7), 2.0), f"mask-{index}.png"  # anti-aliased edges
            cv2.imwrite(str(tmp_path / name), soft)
        else:
            name = f"mask-{index}.jpg"  # JPEG ground truth: ringing values everywhere near the edge
            cv2.imwrite(str(tmp_path / name), truth, [cv2.IMWRITE_JPEG_QUALITY, 75])
        lines.append(f"{row['id']},{image.name},{name},test")
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes("\n".join(lines).encode("latin-1"))
    code = main(["evaluate", "--data", str(manifest), "--json"])
    out, err = capfd.readouterr()
    assert code == 0 and "Traceback" not in err, err
    assert "not UTF-8; read as Latin-1" in err
    result = json.loads(out)
    dice = [row["dice"] for row in result["models"][0]["per_image"]]
    assert len(dice) == 3 and min(dice) > 0.85, dice


def test_train_on_an_example_cache_missing_keys_is_one_line(tmp_path, capfd):
    cache = tmp_path / "examples.npz"
    np.savez_compressed(cache, train_images=np.zeros((2, 256, 256), np.uint8))
    code = main(["train", "--data", str(cache), "--out", str(tmp_path / "run"), "--epochs", "1"])
    _out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in err
    assert lines[-1].startswith(f"error: {cache}: not a usable example cache") and "train_masks" in lines[-1]
    assert "adaqat prepare" in lines[-1]
