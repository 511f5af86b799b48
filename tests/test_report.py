"""benchmarks/make_report.py: renders BENCHMARKS.md's report block from the stored results JSON (issue 14).

Runs the real script on a temporary copy of BENCHMARKS.md and of benchmarks/results/*.json, so the
tracked files are never touched; checks the markers, that text outside the block is kept, the rows and
tests the stored results must produce, and that the PNGs linked from the block are written.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_make_report():
    spec = importlib.util.spec_from_file_location("make_report", ROOT / "benchmarks" / "make_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    results = tmp_path / "results"
    results.mkdir()
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, results / path.name)
    md = tmp_path / "BENCHMARKS.md"
    shutil.copy(ROOT / "BENCHMARKS.md", md)
    return results, md


def block_of(text: str) -> str:
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "exactly one report block"
    start, end = text.index(BEGIN), text.index(END)
    assert start < end
    return text[start:end + len(END)]


def outside_of(text: str) -> str:
    return text[: text.index(BEGIN)] + text[text.index(END) + len(END):]


def table_rows(block: str, first_cell: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in block.splitlines()
            if line.startswith(f"| {first_cell}")]


def test_report_renders_rows_tests_and_plots(workspace):
    results, md = workspace
    before = md.read_text()
    load_make_report().main(["--results", str(results), "--benchmarks-md", str(md)])
    after = md.read_text()
    block = block_of(after)
    assert outside_of(after) == outside_of(before), "text outside the markers must not change"

    stage1 = json.loads((results / "stage1_issue14.json").read_text())
    assert "not run yet" not in block.split("### CPU latency per image")[0], "every accuracy row has figures"
    full = table_rows(block, "full fine-tuning FP32 (reference)")
    lora = table_rows(block, "fixed-rank LoRA r 12")
    assert full and lora
    assert {r[3] for r in full} == {"256 px", "full"} and {r[2] for r in full} == {"auto", "box"}
    assert any("clinic-sample val" in r[1] for r in full), "the external set is scored"
    # the 256-px auto row is the mean of the stored per-image Dice
    values = stage1["test256"]["full"]["auto"]
    auto_256 = next(r for r in full if r[2] == "auto" and r[3] == "256 px")
    assert auto_256[4].startswith(f"{sum(values) / len(values):.4f} ± ")
    assert auto_256[8] == f"{stage1['runs']['full']['trainable']:,}" and auto_256[9] == "1.0x"
    assert lora[0][8] == f"{stage1['runs']['everywhere']['trainable']:,}", "LoRA r 12 = AdaLoRA's trainable parameters"
    assert "- AdaLoRA (everywhere) vs fixed-rank LoRA r 12, same trainable parameters: " in block
    assert "p = " in block.split("fixed-rank LoRA r 12, same trainable parameters: ")[1].splitlines()[0]

    gpu = json.loads((results / "gpu_speed.json").read_text())
    gpu_rows = table_rows(block, "sam_vit_b") + table_rows(block, "lite_medsam")
    assert len(gpu_rows) == len(gpu["rows"]) and all(r[-1] == gpu["machine"]["gpu"] for r in gpu_rows)
    assert {int(r[1]) for r in table_rows(block, "sam_vit_b")} == {512, 1024}

    report = json.loads((results / "report.json").read_text())
    assert report["plots"], "plots listed"
    for name in report["plots"]:
        png = results / "plots" / name
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000, name
        assert f"](benchmarks/results/plots/{name})" in block
    assert {"rank_pattern.png", "gpu_images_per_s.png", "cpu_latency_vs_size.png", "stage1_val_curves.png"} <= set(report["plots"])

    load_make_report().main(["--results", str(results), "--benchmarks-md", str(md), "--no-plots"])
    again = md.read_text()
    assert outside_of(again) == outside_of(before) and again.count(BEGIN) == 1, "re-rendering replaces the block"


def test_missing_results_say_not_run_and_block_is_appended(workspace):
    results, md = workspace
    for name in ("stage1_issue14.json", "gpu_speed.json"):
        (results / name).unlink(missing_ok=True)
    md.write_text("# Benchmarks\n\nhand-written text\n")
    load_make_report().main(["--results", str(results), "--benchmarks-md", str(md), "--no-plots"])
    text = md.read_text()
    assert text.startswith("# Benchmarks\n\nhand-written text\n")
    block = block_of(text)
    assert table_rows(block, "full fine-tuning FP32 (reference)")[0][4] == "not run yet"
    assert "GPU images/s" in block.split("Not yet in this report:")[1]
    assert "### GPU: images/s" not in block
