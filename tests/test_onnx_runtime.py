"""ONNX Runtime form of INT8 models: the shipped graphs carry the model's own int8 weights, load only
when their sha256 matches the card, and give the torch INT8 masks on real chest X-rays."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from core.models.errors import ModelLoadError
from core.models.loading import bundled_model_dirs, load_model, load_model_dir
from core.models.onnx_runtime import OnnxRuntimeSegmenter
from core.segment.predictor import Predictor
from tests.shared_data import shared_file


@pytest.fixture(scope="module")
def shipped():
    return bundled_model_dirs()["default"]


@pytest.fixture
def shipped_copy(shipped, tmp_path):
    return shutil.copytree(shipped, tmp_path / "default")


def _decoder_feeds(seed: int = 0) -> dict:
    """Inputs of the decoder graph: an embedding, its positional encoding, one box's two tokens."""
    rng = np.random.RandomState(seed)
    return {"image_embeddings": rng.randn(1, 256, 64, 64).astype(np.float32),
            "image_pe": rng.randn(1, 256, 64, 64).astype(np.float32),
            "sparse": rng.randn(1, 2, 256).astype(np.float32), "dense": np.zeros((1, 256, 64, 64), np.float32)}


def _dice(a, b) -> float:
    a, b = a > 0, b > 0
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def test_auto_runs_the_shipped_int8_model_in_onnx_runtime(shipped):
    loaded = load_model("default")
    assert loaded.runtime == "onnxruntime" and isinstance(loaded.module, OnnxRuntimeSegmenter)
    assert load_model("default", runtime="torch").runtime == "torch"
    assert load_model("lite_medsam").runtime == "torch"  # FP32, no graphs


def test_onnx_runtime_and_torch_int8_masks_agree_on_real_images(shipped):
    ort_model = load_model_dir(shipped, runtime="onnxruntime")
    torch_model = load_model_dir(shipped, runtime="torch")
    images = sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[:3]
    for path in images:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        a, b = Predictor(ort_model).segment(gray), Predictor(torch_model).segment(gray)
        assert _dice(a.mask, b.mask) >= 0.99, path.name
        assert a.model == b.model  # same weights, same provenance whichever runtime ran them


def test_graphs_hold_the_models_own_int8_weights(shipped):
    import onnx
    from safetensors.torch import load_file

    graph = onnx.load(str(shipped / "encoder.onnx"))
    stored = load_file(str(shipped / "model.safetensors"))
    int8_initialisers = [onnx.numpy_helper.to_array(t) for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    weight = stored["image_encoder.layers.1.blocks.0.attn.qkv.weight_int8"].numpy().T
    assert any(a.shape == weight.shape and np.array_equal(a, weight) for a in int8_initialisers)
    assert not any(n.op_type in ("DynamicQuantizeLinear",) for n in graph.graph.node)
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in graph.graph.node) >= 40


def test_a_tampered_graph_is_refused_in_one_line(shipped_copy):
    path = shipped_copy / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="encoder.onnx: sha256 .* does not match the model card") as error:
        load_model(str(shipped_copy))
    assert "\n" not in str(error.value)
    assert load_model(str(shipped_copy), runtime="torch").runtime == "torch"  # the weights are still fine


def test_a_graph_that_is_a_link_or_a_pipe_is_refused(shipped_copy, tmp_path):
    path = shipped_copy / "decoder.onnx"
    shutil.move(path, tmp_path / "elsewhere.onnx")
    path.symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(ModelLoadError, match="decoder graph is a symbolic link"):
        load_model(str(shipped_copy))
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(ModelLoadError, match="decoder graph is not a regular file"):
        load_model(str(shipped_copy))


def test_asking_for_onnx_runtime_without_graphs_says_why(shipped_copy):
    card = json.loads((shipped_copy / "model.json").read_text())
    del card["onnx"]
    (shipped_copy / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="has no ONNX Runtime form"):
        load_model(str(shipped_copy), runtime="onnxruntime")
    assert load_model(str(shipped_copy)).runtime == "torch"  # auto falls back


def test_adding_the_form_to_a_sam_vit_int8_model(tmp_path, capsys):
    from core.cli import main
    from core.models.int8 import POLICIES, export_int8_model_dir
    from core.models.sam_vit import TINY_TEST_CONFIG
    from core.models.sam_vit import build as build_vit

    torch.manual_seed(4)
    vit = build_vit("sam_vit_b", TINY_TEST_CONFIG).eval()
    card = {"name": "tiny-vit", "version": "0", "backbone": "sam_vit_b", "backbone_config": TINY_TEST_CONFIG.to_json()}
    folder = export_int8_model_dir(vit, tmp_path / "vit", card, "merged")
    assert main(["models", "onnx", str(folder)]) == 0
    assert "ONNX Runtime form written" in capsys.readouterr().out
    ort_model, torch_model = load_model(str(folder)), load_model(str(folder), runtime="torch")
    assert ort_model.runtime == "onnxruntime"
    image = torch.rand(1, 1, vit.image_size, vit.image_size) * 255
    box = torch.tensor([[10.0, 10.0, 100.0, 110.0]])
    with torch.inference_mode():
        a, _ = ort_model.module.decode(ort_model.module.encode(image), boxes=box)
        b, _ = torch_model.module.decode(torch_model.module.encode(image), boxes=box)
    a = torch.from_numpy(a)  # the ONNX Runtime segmenter answers in numpy (it never imports torch)
    assert ((a - b).norm() / b.norm()).item() < 0.05
    assert POLICIES


def test_an_encoder_graph_is_reused_only_for_the_same_encoder_values(tmp_path):
    """A continued model may take its parent's encoder graph only while its encoder is the parent's."""
    from core.models.int8 import export_int8_model_dir
    from core.models.onnx_form_writer import _same_encoder_graph, add_onnx_form
    from core.models.sam_vit import TINY_TEST_CONFIG
    from core.models.sam_vit import build as build_vit

    torch.manual_seed(5)
    vit = build_vit("sam_vit_b", TINY_TEST_CONFIG).eval()
    card = {"name": "tiny-vit", "version": "0", "backbone": "sam_vit_b", "backbone_config": TINY_TEST_CONFIG.to_json()}
    parent = export_int8_model_dir(vit, tmp_path / "parent", card, "merged")
    add_onnx_form(parent)
    same = load_model_dir(parent, runtime="torch").module
    assert _same_encoder_graph(same, parent) == (parent / "encoder.onnx").read_bytes()
    with torch.no_grad():
        vit.image_encoder.neck[0].weight.add_(0.01)  # a float (convolution) weight of the encoder changes
    other = export_int8_model_dir(vit, tmp_path / "other", {**card, "version": "1"}, "merged")
    assert _same_encoder_graph(load_model_dir(other, runtime="torch").module, parent) is None
    field = add_onnx_form(other, encoder_from=parent)
    assert field["graphs"]["encoder"]["sha256"] != json.loads((parent / "model.json").read_text())["onnx"]["graphs"]["encoder"]["sha256"]


def test_the_activation_width_follows_the_cpu_and_can_be_forced(shipped, monkeypatch):
    from core.models.int8 import has_int8_dot_product
    from core.models.onnx_activations import BITS_ENV, activation_bits_for_this_cpu

    monkeypatch.delenv(BITS_ENV, raising=False)
    expected = 8 if has_int8_dot_product() else 7  # 8 bits only where u8 x s8 cannot saturate (VNNI/AMX)
    assert activation_bits_for_this_cpu() == expected
    assert load_model_dir(shipped, runtime="onnxruntime").module.activation_bits == expected
    for forced in ("7", "8"):
        monkeypatch.setenv(BITS_ENV, forced)
        assert load_model_dir(shipped, runtime="onnxruntime").module.activation_bits == int(forced)
    monkeypatch.setenv(BITS_ENV, "6")
    with pytest.raises(ValueError, match=f"{BITS_ENV}='6': expected 7 or 8"):
        activation_bits_for_this_cpu()


def test_the_8bit_form_swaps_only_the_activation_quantiser(shipped):
    """Same int8 weights and scales, one DynamicQuantizeLinear per fused MatMul, the 7-bit arithmetic gone."""
    import collections

    import onnx
    import onnxruntime as ort

    from core.models.onnx_activations import with_8bit_activations

    for part in ("encoder", "decoder"):
        seven = (shipped / f"{part}.onnx").read_bytes()
        eight = with_8bit_activations(seven)
        a, b = onnx.load_from_string(seven).graph, onnx.load_from_string(eight).graph
        ops_a, ops_b = (collections.Counter(n.op_type for n in g.node) for g in (a, b))
        assert ops_b["MatMulIntegerToFloat"] == ops_a["MatMulIntegerToFloat"] > 0
        producer = {out: n.op_type for n in b.node for out in n.output}  # layers sharing an input share its quantiser
        assert {producer[n.input[0]] for n in b.node if n.op_type == "MatMulIntegerToFloat"} == {"DynamicQuantizeLinear"}
        assert ops_b["QuantizeLinear"] == 0 and ops_a["QuantizeLinear"] > 0
        weights = {t.name: onnx.numpy_helper.to_array(t).tobytes() for t in a.initializer}
        assert {t.name: onnx.numpy_helper.to_array(t).tobytes() for t in b.initializer} == weights
        assert with_8bit_activations(eight) == eight  # already 8-bit: left as it is
    session = ort.InferenceSession(with_8bit_activations((shipped / "encoder.onnx").read_bytes()),
                                   providers=["CPUExecutionProvider"])
    image = np.zeros((1, 3, 256, 256), np.float32)
    assert np.isfinite(session.run(None, {"image": image})[0]).all()


@pytest.mark.parametrize("bits", ["7", "8"])
def test_both_activation_widths_give_the_torch_int8_masks(shipped, bits, monkeypatch):
    """On this CPU too (8 bits can saturate without VNNI: the width the loader picks is the better one)."""
    monkeypatch.setenv("ADAQAT_ORT_ACTIVATION_BITS", bits)
    ort_model = load_model_dir(shipped, runtime="onnxruntime")
    torch_model = load_model_dir(shipped, runtime="torch")
    for path in sorted(shared_file("cxr-lungs", "images").glob("*.jpg"))[3:5]:
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert _dice(Predictor(ort_model).segment(gray).mask, Predictor(torch_model).segment(gray).mask) >= 0.98, path.name


def test_the_profiler_is_off_unless_a_benchmark_asks_for_it(shipped, tmp_path):
    """Product sessions write no profile files; bench_encoder_isa's per-op breakdown comes from a real one."""
    from core.models.onnx_runtime import _session

    path = shipped / "decoder.onnx"
    feeds = _decoder_feeds()
    plain = _session(path, path.read_bytes(), 1, 7)
    plain.run(None, feeds)
    assert plain.end_profiling() == ""
    profiled = _session(path, path.read_bytes(), 1, 7, profile_prefix=str(tmp_path / "decoder"))
    profiled.run(None, feeds)
    events = json.loads(open(profiled.end_profiling()).read())
    ops = {e["args"]["op_name"] for e in events if e.get("cat") == "Node" and "op_name" in e.get("args", {})}
    assert "MatMulIntegerToFloat" in ops  # the int8 kernels are what runs
    assert [p.name for p in tmp_path.iterdir()][0].startswith("decoder")


def test_activation_ranges_are_reduced_by_rows_first_with_the_same_result(shipped):
    """ONNX Runtime spreads a per-row reduction over its threads but not a whole-tensor one (24 % of the
    encoder at 8 threads, BENCHMARKS.md); collapsing the two steps back to one must not change a bit."""
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string((shipped / "decoder.onnx").read_bytes())
    graph = model.graph
    producer = {out: n for n in graph.node for out in n.output}
    whole = [n for n in graph.node
             if n.op_type in ("ReduceMin", "ReduceMax") and not any(a.name == "axes" for a in n.attribute)]
    assert whole and all(producer[n.input[0]].op_type == n.op_type for n in whole)  # every range: rows, then all
    assert all([list(a.ints) for a in producer[n.input[0]].attribute if a.name == "axes"] == [[-1]] for n in whole)
    for n in whole:  # the one-step form, as exported before
        n.input[0] = producer[n.input[0]].input[0]
    feeds = _decoder_feeds()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the collapsed graph leaves the row reductions unused: no warning on stderr
    rows_first = ort.InferenceSession((shipped / "decoder.onnx").read_bytes(), options, providers=["CPUExecutionProvider"])
    one_step = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    for a, b in zip(rows_first.run(None, feeds), one_step.run(None, feeds)):
        assert np.array_equal(a, b)
