"""Geometry shared by training and inference: longest-side resize, bottom-right padding, and back.

The model input is the ``model_gray`` image (uint8) resized so its longest side equals the model's
input size, padded with zeros at the bottom and right to a square, as 0-255 floats; the backbone's
own ``normalize`` then maps it to the encoder's distribution. Prompts are scaled by the same factor.
numpy and OpenCV only: the ONNX Runtime route of a reading station runs without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Letterbox:
    """How an image of ``original_hw`` was placed in a ``size``x``size`` model input."""

    original_hw: tuple[int, int]
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.original_hw)

    @property
    def resized_hw(self) -> tuple[int, int]:
        h, w = self.original_hw
        return max(1, int(round(h * self.scale))), max(1, int(round(w * self.scale)))

    def box_to_model(self, box_xyxy) -> np.ndarray:
        return np.asarray(box_xyxy, dtype=np.float32) * self.scale

    def points_to_model(self, points_xy) -> np.ndarray:
        return np.asarray(points_xy, dtype=np.float32).reshape(-1, 2) * self.scale

    def whole_image_box(self) -> np.ndarray:
        """The automatic prompt: a box around the whole image, in model-input pixels."""
        h, w = self.resized_hw
        return np.array([0.0, 0.0, w - 1.0, h - 1.0], dtype=np.float32)


def letterbox_image(gray: np.ndarray, size: int, interpolation: int = cv2.INTER_AREA) -> tuple[np.ndarray, Letterbox]:
    """uint8 HxW -> uint8 size x size (resized, zero-padded) and its geometry."""
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    box = Letterbox((int(gray.shape[0]), int(gray.shape[1])), size)
    h, w = box.resized_hw
    resized = cv2.resize(gray, (w, h), interpolation=interpolation)
    padded = np.zeros((size, size), dtype=gray.dtype)
    padded[:h, :w] = resized
    return padded, box


def to_model_array(padded: np.ndarray) -> np.ndarray:
    """uint8 SxS -> float32 (1,1,S,S) in 0-255, the form the segmenters' ``encode`` takes."""
    return np.ascontiguousarray(padded, dtype=np.float32)[None, None]


def to_model_tensor(padded: np.ndarray) -> torch.Tensor:
    """:func:`to_model_array` as a torch tensor (the torch route, training and benchmarks)."""
    import torch

    return torch.from_numpy(to_model_array(padded))


def logits_to_original(low_res_logits, box: Letterbox) -> np.ndarray:
    """(1,1,s,s) decoder logits (array or CPU tensor) -> float32 probability map at the original size.

    Bilinear with half-pixel centres (OpenCV's INTER_LINEAR, i.e. torch's ``align_corners=False``):
    to the model's input square, crop the padding, then to the original image size.
    """
    logits = np.asarray(low_res_logits, dtype=np.float32)[0, 0]
    upsampled = cv2.resize(logits, (box.size, box.size), interpolation=cv2.INTER_LINEAR)
    h, w = box.resized_hw
    oh, ow = box.original_hw
    full = cv2.resize(np.ascontiguousarray(upsampled[:h, :w]), (ow, oh), interpolation=cv2.INTER_LINEAR)
    return np.exp(-np.logaddexp(0.0, -full)).astype(np.float32)  # sigmoid without overflow
