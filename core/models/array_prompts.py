"""SAM's prompt encoder (boxes and points, no mask prompt) in numpy, for the ONNX Runtime route.

The prompt encoder is a handful of embeddings and a random-Fourier positional encoding: too small to
be worth a graph, and running it in numpy is what keeps torch out of a process that only reads
studies. It reads its tensors from the model's own safetensors file and computes what
``segment_anything.modeling.PromptEncoder`` computes (sparse box/point tokens, the dense "no mask"
embedding and the dense positional encoding), in float32; ``tests/test_torch_free.py`` checks it
against the torch module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ModelLoadError

PREFIX = "prompt_encoder."
TENSORS = ("pe_layer.positional_encoding_gaussian_matrix", "no_mask_embed.weight", "not_a_point_embed.weight",
           "point_embeddings.0.weight", "point_embeddings.1.weight", "point_embeddings.2.weight",
           "point_embeddings.3.weight")


def read_prompt_tensors(weights: Path) -> dict[str, np.ndarray]:
    """The prompt encoder's tensors from a safetensors file, checked for presence, type and shape."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="numpy") as handle:
            names = set(handle.keys())
            missing = [PREFIX + t for t in TENSORS if PREFIX + t not in names]
            if missing:
                raise ModelLoadError(f"{weights}: the prompt encoder's {missing[0]} is missing; reinstall or re-export the model")
            tensors = {t: handle.get_tensor(PREFIX + t) for t in TENSORS}
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelLoadError(f"{weights}: not a readable safetensors file ({' '.join(str(error).split())})") from None
    gaussian = tensors["pe_layer.positional_encoding_gaussian_matrix"]
    dim = 2 * gaussian.shape[-1] if gaussian.ndim == 2 else -1
    for name, value in tensors.items():
        expected = (2, dim // 2) if name.startswith("pe_layer") else (1, dim)
        if value.dtype != np.float32 or value.shape != expected or not np.isfinite(value).all():
            raise ModelLoadError(f"{weights}: prompt encoder tensor {PREFIX + name} is {value.dtype} {value.shape}, "
                                 f"expected finite float32 {expected}; reinstall or re-export the model")
    return tensors


class ArrayPromptEncoder:
    """Boxes and points (model-input pixels) -> the decoder's sparse and dense prompt embeddings."""

    def __init__(self, tensors: dict[str, np.ndarray], image_size: int, grid: int) -> None:
        self.gaussian = tensors["pe_layer.positional_encoding_gaussian_matrix"].astype(np.float32)
        self.no_mask = tensors["no_mask_embed.weight"].reshape(-1).astype(np.float32)
        self.not_a_point = tensors["not_a_point_embed.weight"].reshape(-1).astype(np.float32)
        self.point_embeddings = [tensors[f"point_embeddings.{i}.weight"].reshape(-1).astype(np.float32) for i in range(4)]
        self.image_size = int(image_size)
        self.grid = int(grid)
        self.embed_dim = self.no_mask.shape[0]
        self._dense_pe = None

    def _encode(self, coords_0_1: np.ndarray) -> np.ndarray:
        """Random-Fourier features of coordinates normalised to [0, 1]: (..., 2) -> (..., embed_dim)."""
        projected = (2.0 * coords_0_1.astype(np.float32) - 1.0) @ self.gaussian
        projected = (2.0 * np.pi * projected).astype(np.float32)
        return np.concatenate([np.sin(projected), np.cos(projected)], axis=-1).astype(np.float32)

    def dense_pe(self) -> np.ndarray:
        """(1, C, grid, grid): the positional encoding of every embedding cell (``get_dense_pe``)."""
        if self._dense_pe is None:
            centres = (np.arange(self.grid, dtype=np.float32) + 0.5) / self.grid
            y, x = np.meshgrid(centres, centres, indexing="ij")
            self._dense_pe = np.ascontiguousarray(self._encode(np.stack([x, y], axis=-1)).transpose(2, 0, 1)[None])
        return self._dense_pe

    def dense(self, batch: int = 1) -> np.ndarray:
        """(B, C, grid, grid): the "no mask prompt" embedding everywhere."""
        return np.broadcast_to(self.no_mask.reshape(1, -1, 1, 1), (batch, self.embed_dim, self.grid, self.grid)).copy()

    def sparse(self, boxes: np.ndarray | None = None, points: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """(B, N, C) tokens for one prompt per image: points (B,N,2)+labels (B,N) and/or boxes (B,4)."""
        tokens = []
        if points is not None:
            coords = np.asarray(points[0], np.float32) + 0.5
            labels = np.asarray(points[1]).astype(np.int64)
            if boxes is None:  # SAM pads a point-only prompt with one "not a point"
                coords = np.concatenate([coords, np.zeros((coords.shape[0], 1, 2), np.float32)], axis=1)
                labels = np.concatenate([labels, -np.ones((labels.shape[0], 1), np.int64)], axis=1)
            embedded = self._encode(coords / self.image_size)
            embedded[labels == -1] = self.not_a_point
            embedded[labels == 0] += self.point_embeddings[0]
            embedded[labels == 1] += self.point_embeddings[1]
            tokens.append(embedded)
        if boxes is not None:
            corners = (np.asarray(boxes, np.float32) + 0.5).reshape(-1, 2, 2)
            embedded = self._encode(corners / self.image_size)
            embedded[:, 0, :] += self.point_embeddings[2]
            embedded[:, 1, :] += self.point_embeddings[3]
            tokens.append(embedded)
        if not tokens:
            return np.zeros((1, 0, self.embed_dim), np.float32)
        return np.concatenate(tokens, axis=1).astype(np.float32)
