"""The predictor's torch side: numpy arrays in, the torch segmenter's calls, numpy logits out.

Imported only for a model that runs in torch (FP32, or INT8 without an ONNX form), so the ONNX
Runtime route of a reading station never loads torch. The image embedding stays a tensor on the
model's device between prompts.
"""

from __future__ import annotations

import numpy as np
import torch


class TorchRoute:
    def __init__(self, model, device: str = "cpu") -> None:
        self.model = model
        self.device = device

    @torch.inference_mode()
    def encode(self, images_0_255: np.ndarray) -> torch.Tensor:
        return self.model.encode(torch.from_numpy(images_0_255).to(self.device))

    @torch.inference_mode()
    def decode(self, embedding: torch.Tensor, boxes: np.ndarray | None = None,
               points: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(low-resolution logits, IoU predictions) as float32 arrays, like the ONNX Runtime segmenter's."""
        tensor_boxes = None if boxes is None else torch.from_numpy(boxes).to(self.device)
        tensor_points = None if points is None else (torch.from_numpy(points[0]).to(self.device),
                                                     torch.from_numpy(points[1]).to(self.device))
        logits, iou = self.model.decode(embedding, boxes=tensor_boxes, points=tensor_points)
        return logits.float().cpu().numpy(), iou.float().cpu().numpy()
