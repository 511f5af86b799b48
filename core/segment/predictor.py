"""Segment one image at a time, automatically or from prompts, caching the image embedding.

Setting an image runs the (expensive) encoder once; every later prompt on the same image runs only
the prompt encoder and the mask decoder, which is what makes interactive refinement feel instant.
Arrays in, arrays out: an ONNX Runtime model is called directly (no torch in the process), a torch
model through :mod:`.torch_route`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..models.artifact import ModelInfo
from ..models.loading import LoadedModel
from ..review.measurements import lung_fraction
from .postprocess import clean_lung_mask, keep_inside_box
from .preprocess import Letterbox, letterbox_image, logits_to_original, to_model_array

THRESHOLD = 0.5


@dataclass
class SegmentationResult:
    mask: np.ndarray  # uint8 HxW, 0 background / 255 lung
    probability: np.ndarray  # float32 HxW in [0, 1]
    model: ModelInfo
    prompt: str  # "auto", "box", "points" or "box+points"
    seconds: float
    iou_prediction: float | None = None  # the mask decoder's own estimate of its IoU
    quality: object | None = None  # core.review.quality_flags.MaskQuality when asked for (``assess``)

    @property
    def lung_fraction(self) -> float:
        return lung_fraction(self.mask)


class Predictor:
    def __init__(self, loaded: LoadedModel, device: str = "cpu") -> None:
        self.model = loaded.module
        self.info = loaded.info
        self.image_size = loaded.image_size
        self.confidence_shift = loaded.confidence_shift  # this model's calibration of the shared confidence
        self.device = device
        if loaded.runtime == "onnxruntime":
            self._route = self.model
        else:
            from .torch_route import TorchRoute

            self._route = TorchRoute(self.model, device)
        self._embedding = None  # numpy (ONNX Runtime) or a tensor on the model device (torch)
        self._letterbox: Letterbox | None = None
        self._last_logits = None
        self.encode_seconds = 0.0

    def set_image(self, gray: np.ndarray) -> None:
        start = time.perf_counter()
        padded, self._letterbox = letterbox_image(gray, self.image_size)
        self._embedding = self._route.encode(to_model_array(padded))
        self.encode_seconds = time.perf_counter() - start

    @property
    def has_image(self) -> bool:
        return self._embedding is not None

    def predict(self, box=None, points=None, point_labels=None, clean: bool = True,
                assess: bool = False) -> SegmentationResult:
        """Mask for the current image. No prompt = automatic mode (whole-image box).

        ``box`` is (x0, y0, x1, y1) and ``points`` (N, 2) x/y in original image pixels; labels 1 = lung,
        0 = not lung. ``clean`` applies the lung-shape post-processing in automatic mode only.
        ``assess`` (automatic mode) adds the mask's confidence and quality flags (``result.quality``).
        """
        if self._embedding is None or self._letterbox is None:
            raise RuntimeError("set_image() must be called before predict()")
        start = time.perf_counter()
        geometry = self._letterbox
        automatic = box is None and points is None
        model_box = geometry.whole_image_box() if automatic else (None if box is None else geometry.box_to_model(box))
        boxes = None if model_box is None else np.ascontiguousarray(model_box, dtype=np.float32).reshape(1, 4)
        prompt_points = None
        if points is not None and len(points):
            coords = np.ascontiguousarray(geometry.points_to_model(points), dtype=np.float32)[None]
            labels = np.asarray(point_labels, dtype=np.int64).reshape(1, -1)
            prompt_points = (coords, labels)
        logits, iou = self._route.decode(self._embedding, boxes=boxes, points=prompt_points)
        self._last_logits = logits
        probability = logits_to_original(logits, geometry)
        mask = (probability > THRESHOLD).astype(np.uint8) * 255
        if automatic and clean:
            mask = clean_lung_mask(mask)
        elif box is not None:
            mask = keep_inside_box(mask, box)
        prompt = "auto" if automatic else "+".join(p for p, v in (("box", box), ("points", points)) if v is not None)
        result = SegmentationResult(mask, probability, self.info, prompt, 0.0, float(iou.reshape(-1)[0]))
        if automatic and assess:
            from .confidence import assess_automatic

            result.quality = assess_automatic(self, result, self.last_low_res_probability())
        result.seconds = time.perf_counter() - start + self.encode_seconds
        return result

    def last_low_res_probability(self) -> np.ndarray:
        """Low-resolution probability of the latest ``predict`` (what the confidence looks at)."""
        return self.low_res_probability(self._last_logits)

    def low_res_probability(self, logits) -> np.ndarray:
        """Decoder logits -> probability on the decoder's own grid, cropped to the image (cheap to compare)."""
        geometry = self._letterbox
        side = int(logits.shape[-1])
        h, w = geometry.resized_hw
        rows, cols = max(1, round(h * side / geometry.size)), max(1, round(w * side / geometry.size))
        logits = logits.float().cpu().numpy() if hasattr(logits, "cpu") else logits  # torch or numpy route
        cropped = np.asarray(logits[0, 0, :rows, :cols], dtype=np.float32)
        return 1.0 / (1.0 + np.exp(-cropped))

    def box_variant_probabilities(self, boxes_model: list[np.ndarray]) -> list[np.ndarray]:
        """Low-resolution probability maps for extra boxes (model-input pixels) on the cached embedding.

        Only the prompt encoder and mask decoder run, so a variant costs a small fraction of a mask.
        """
        if self._embedding is None:
            raise RuntimeError("set_image() must be called before box_variant_probabilities()")
        out = []
        for box in boxes_model:
            boxes = np.asarray(box, dtype=np.float32).reshape(1, 4)
            logits, _ = self._route.decode(self._embedding, boxes=boxes)
            out.append(self.low_res_probability(logits))
        return out

    def segment(self, gray: np.ndarray, **prompts) -> SegmentationResult:
        self.set_image(gray)
        return self.predict(**prompts)
