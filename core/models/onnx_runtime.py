"""Run an INT8 model's ONNX Runtime form behind the segmenter's interface (``encode`` / ``decode``).

The predictor (letterbox, embedding cache, post-processing) is the same for both runtimes; only the
two heavy calls change. Each graph's sha256 is checked against ``model.json`` and the session is
made from those very bytes; only plain files are opened. Activations: 7 or 8 bits by CPU (see
:mod:`.onnx_activations`). Threads: the process's setting (:mod:`core.compute`: the CLI's
``--threads``, the viewer's setting; 0 = ONNX Runtime's default); graph optimisation on.

This route never imports torch: the prompt encoder runs in numpy (:mod:`.array_prompts`) from the
model's own safetensors, and arrays go in and out, so a reading station needs no torch at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .array_prompts import ArrayPromptEncoder, read_prompt_tensors
from .backbone_specs import default_image_size, embedding_grid, pixel_stats
from .card import ModelCard
from .errors import ModelLoadError
from .onnx_activations import activation_bits_for_this_cpu, with_8bit_activations
from .onnx_form import has_onnx_form, verified_graphs


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


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


def why_not(card: ModelCard, device: str) -> str | None:
    """None when this runtime can run the card's model on ``device``, else why not (for the error line)."""
    if not has_onnx_form(card):
        return "the model has no ONNX Runtime form (adaqat models onnx MODEL adds it)"
    if not onnxruntime_available():
        return "onnxruntime is not installed"
    if device != "cpu":
        return "it runs on the CPU only"
    if card.precision != "int8":
        return "its ONNX Runtime form is for INT8 models only"
    return None


def load(model_dir: Path, card: ModelCard, weights: Path, device: str, threads: int) -> OnnxRuntimeSegmenter:
    return OnnxRuntimeSegmenter.from_model_dir(model_dir, card, weights, threads)
