"""Run an INT8 model's ONNX Runtime form behind the segmenter's interface (``encode`` / ``decode``).

The predictor (letterbox, embedding cache, post-processing) is the same for both runtimes; only the
two heavy calls change. Each graph's sha256 is checked against ``model.json`` and the session is
made from those very bytes; only plain files are opened. Activations: 7 or 8 bits by CPU (see
:mod:`.onnx_activations`). Threads: the intra-op count torch was given (the CLI's
``--threads``, the viewer's setting); graph optimisation on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .card import ModelCard, ModelCardError, regular_file
from .errors import ModelLoadError
from .onnx_activations import activation_bits_for_this_cpu, with_8bit_activations
from .onnx_export import FORMAT, GRAPH_FILES
from .onnx_safety import check_self_contained
from .segmenter import PromptableSegmenter

RUNTIMES = ("auto", "torch", "onnxruntime")


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def has_onnx_form(card: ModelCard) -> bool:
    return isinstance(card.extra.get("onnx"), dict)


def verified_graph_paths(model_dir: Path, card: ModelCard) -> dict[str, Path]:
    """{part: path} of the card's graphs, each a plain file whose sha256 matches the card."""
    return {part: path for part, (path, _) in verified_graphs(model_dir, card).items()}


def verified_graphs(model_dir: Path, card: ModelCard) -> dict[str, tuple[Path, bytes]]:
    """{part: (path, bytes)}: each graph read once, checked against the card, and these bytes are what runs."""
    spec = card.extra.get("onnx")
    graphs = spec.get("graphs") if isinstance(spec, dict) else None
    if not isinstance(graphs, dict) or spec.get("format") != FORMAT or set(graphs) != set(GRAPH_FILES):
        raise ModelCardError(f"{model_dir / 'model.json'}: 'onnx' is not an {FORMAT} record; re-export the ONNX form")
    paths = {}
    for part, entry in graphs.items():
        name = entry.get("file") if isinstance(entry, dict) else None
        if name != GRAPH_FILES[part]:
            raise ModelCardError(f"{model_dir / 'model.json'}: onnx graph '{part}' must be {GRAPH_FILES[part]}")
        path = model_dir / name
        regular_file(path, f"ONNX {part} graph")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.get("sha256"):
            raise ModelLoadError(f"{path}: sha256 {digest[:12]}… does not match the model card; the graph was "
                                 "altered or damaged, reinstall the model (or run it with --runtime torch)")
        check_self_contained(path, data)
        paths[part] = (path, data)
    return paths


def _session(path: Path, graph: bytes, threads: int, activation_bits: int, profile_prefix: str | None = None):
    """The product's session for ``graph``; ``profile_prefix`` turns on ONNX Runtime's per-node profiler (benchmarks)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no warnings on stderr
    try:
        if activation_bits == 8:
            graph = with_8bit_activations(graph)
        return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad graphs
        raise ModelLoadError(f"{path}: ONNX Runtime cannot load this graph ({type(error).__name__}); "
                             "reinstall the model or run it with --runtime torch") from None


class OnnxRuntimeSegmenter(nn.Module):
    """``encode``/``decode`` of :class:`PromptableSegmenter`, computed by ONNX Runtime sessions.

    ``graphs``: {part: (path, verified bytes)}; ``activation_bits``: 7 or 8, by default what suits this
    CPU (:mod:`.onnx_activations`). ``torch_model`` supplies the prompt encoder and normalisation (tiny, float); its encoder and
    decoder weights are not used and may be dropped by the caller.
    """

    def __init__(self, torch_model: PromptableSegmenter, graphs: dict[str, tuple[Path, bytes]], threads: int,
                 activation_bits: int | None = None) -> None:
        super().__init__()
        self.backbone = torch_model.backbone
        self.image_size = torch_model.image_size
        self.prompt_encoder = torch_model.prompt_encoder
        self.register_buffer("pixel_mean", torch_model.pixel_mean.clone(), persistent=False)
        self.register_buffer("pixel_std", torch_model.pixel_std.clone(), persistent=False)
        self.runtime = "onnxruntime"
        self.activation_bits = activation_bits or activation_bits_for_this_cpu()
        self._encoder = _session(*graphs["encoder"], threads, self.activation_bits)
        self._decoder = _session(*graphs["decoder"], threads, self.activation_bits)

    normalize = PromptableSegmenter.normalize

    @torch.no_grad()
    def encode(self, images_0_255: torch.Tensor) -> torch.Tensor:
        pixels = self.normalize(images_0_255.float().cpu()).contiguous().numpy()
        embeddings = [self._encoder.run(None, {"image": pixels[i : i + 1]})[0] for i in range(pixels.shape[0])]
        return torch.from_numpy(np.concatenate(embeddings))

    @torch.no_grad()
    def decode(self, embeddings: torch.Tensor, boxes: torch.Tensor | None = None,
               points: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        image_pe = self.prompt_encoder.get_dense_pe().cpu().numpy()
        logits, ious = [], []
        for i in range(embeddings.shape[0]):
            sparse, dense = self.prompt_encoder(
                points=None if points is None else (points[0][i : i + 1], points[1][i : i + 1]),
                boxes=None if boxes is None else boxes[i : i + 1], masks=None)
            low, iou = self._decoder.run(None, {
                "image_embeddings": embeddings[i : i + 1].float().cpu().numpy(), "image_pe": image_pe,
                "sparse": sparse.float().cpu().numpy(), "dense": dense.float().cpu().numpy()})
            logits.append(torch.from_numpy(low))
            ious.append(torch.from_numpy(iou))
        return torch.cat(logits), torch.cat(ious)

    def forward(self, images_0_255: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images_0_255), boxes=boxes)[0]


def choose_runtime(requested: str, card: ModelCard, device: str) -> str:
    """"auto": ONNX Runtime for an INT8 model that carries the graphs on the CPU, else torch."""
    if requested not in RUNTIMES:
        raise ModelLoadError(f"unknown runtime '{requested}' (use {', '.join(RUNTIMES)})")
    if requested == "torch":
        return "torch"
    usable = card.precision == "int8" and has_onnx_form(card) and onnxruntime_available() and device == "cpu"
    if requested == "onnxruntime" and not usable:
        why = ("the model has no ONNX Runtime form (adaqat models onnx MODEL adds it)" if not has_onnx_form(card)
               else "onnxruntime is not installed" if not onnxruntime_available() else "it runs on the CPU only")
        raise ModelLoadError(f"{card.name}: cannot run with onnxruntime: {why}")
    return "onnxruntime" if usable else "torch"
