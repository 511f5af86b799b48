"""Run an INT8 model's ONNX Runtime form behind the segmenter's interface (``encode`` / ``decode``).

The predictor (letterbox, embedding cache, post-processing) is the same for both runtimes; only the
two heavy calls change. Each graph's sha256 is checked against ``model.json`` and the session is
made from those very bytes; only plain files are opened. Activations: 7 or 8 bits by CPU (see
:mod:`.onnx_activations`). Threads: the process's setting (:mod:`core.runtime`: the CLI's
``--threads``, the viewer's setting; 0 = ONNX Runtime's default); graph optimisation on.

This route never imports torch: the prompt encoder runs in numpy (:mod:`.array_prompts`) from the
model's own safetensors, and arrays go in and out, so a reading station needs no torch at all.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .array_prompts import ArrayPromptEncoder, read_prompt_tensors
from .backbone_specs import default_image_size, embedding_grid, pixel_stats
from .card import ModelCard, ModelCardError, regular_file
from .errors import ModelLoadError
from .onnx_activations import activation_bits_for_this_cpu, with_8bit_activations
from .onnx_graphs import FORMAT, GRAPH_FILES
from .onnx_safety import check_self_contained

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
    options.intra_op_num_threads = max(0, int(threads))  # 0: ONNX Runtime's default (physical cores)
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


class OnnxRuntimeSegmenter:
    """``encode``/``decode`` of :class:`PromptableSegmenter` on numpy arrays, computed by ONNX Runtime.

    ``graphs``: {part: (path, verified bytes)}; ``activation_bits``: 7 or 8, by default what suits this
    CPU (:mod:`.onnx_activations`). Shapes as the torch segmenter's: images (B,1|3,S,S) in 0-255, boxes
    (B,4) and points ((B,N,2), (B,N)) in model-input pixels; CPU tensors are accepted too (converted).
    """

    runtime = "onnxruntime"

    def __init__(self, backbone: str, image_size: int, prompts: ArrayPromptEncoder,
                 graphs: dict[str, tuple[Path, bytes]], threads: int, activation_bits: int | None = None) -> None:
        self.backbone = backbone
        self.image_size = int(image_size)
        self.prompt_encoder = prompts
        mean, std = pixel_stats(backbone)
        self.pixel_mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.pixel_std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        self.activation_bits = activation_bits or activation_bits_for_this_cpu()
        self._encoder = _session(*graphs["encoder"], threads, self.activation_bits)
        self._decoder = _session(*graphs["decoder"], threads, self.activation_bits)

    @classmethod
    def from_model_dir(cls, model_dir: Path, card: ModelCard, weights: Path, threads: int = 0,
                       activation_bits: int | None = None) -> "OnnxRuntimeSegmenter":
        """The model folder's ONNX form: verified graphs plus the prompt encoder from its weights."""
        image_size = int(card.backbone_config.get("image_size", default_image_size(card.backbone)))
        prompts = ArrayPromptEncoder(read_prompt_tensors(weights), image_size, embedding_grid(card.backbone, image_size))
        return cls(card.backbone, image_size, prompts, verified_graphs(model_dir, card), threads, activation_bits)

    def to(self, device="cpu"):  # the loader's ``.to(device).eval()``: ONNX Runtime runs on the CPU only
        return self

    def eval(self):
        return self

    def normalize(self, images_0_255) -> np.ndarray:
        """(B,1|3,S,S) float in 0-255 -> the encoder's input distribution (as the torch segmenter's)."""
        images = np.asarray(images_0_255, dtype=np.float32)
        if images.shape[1] == 1:
            images = np.broadcast_to(images, (images.shape[0], 3, *images.shape[2:]))
        return np.ascontiguousarray((images - self.pixel_mean) / self.pixel_std, dtype=np.float32)

    def encode(self, images_0_255) -> np.ndarray:
        pixels = self.normalize(images_0_255)
        embeddings = [self._encoder.run(None, {"image": pixels[i : i + 1]})[0] for i in range(pixels.shape[0])]
        return np.concatenate(embeddings)

    def decode(self, embeddings, boxes=None, points=None) -> tuple[np.ndarray, np.ndarray]:
        embeddings = np.asarray(embeddings, dtype=np.float32)
        boxes = None if boxes is None else np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        points = None if points is None else (np.asarray(points[0], np.float32), np.asarray(points[1]))
        image_pe = self.prompt_encoder.dense_pe()
        logits, ious = [], []
        for i in range(embeddings.shape[0]):
            sparse = self.prompt_encoder.sparse(
                boxes=None if boxes is None else boxes[i : i + 1],
                points=None if points is None else (points[0][i : i + 1], points[1][i : i + 1]))
            low, iou = self._decoder.run(None, {
                "image_embeddings": np.ascontiguousarray(embeddings[i : i + 1]), "image_pe": image_pe,
                "sparse": sparse, "dense": self.prompt_encoder.dense(1)})
            logits.append(low)
            ious.append(iou)
        return np.concatenate(logits), np.concatenate(ious)

    def __call__(self, images_0_255, boxes) -> np.ndarray:
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
