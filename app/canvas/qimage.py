"""numpy arrays -> QImage, copying so the QImage never points into a buffer Python may free."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage


def gray_to_qimage(gray: np.ndarray) -> QImage:
    """uint8 HxW -> Format_Grayscale8 (deep copy)."""
    data = np.ascontiguousarray(gray, dtype=np.uint8)
    height, width = data.shape
    return QImage(data.data, width, height, width, QImage.Format.Format_Grayscale8).copy()


def mask_to_qimage(mask: np.ndarray, color: QColor) -> QImage:
    """0/255 mask -> indexed image: 0 transparent, non-zero ``color``; opacity is the item's job."""
    data = np.ascontiguousarray(mask, dtype=np.uint8)
    height, width = data.shape
    image = QImage(data.data, width, height, width, QImage.Format.Format_Indexed8)
    table = [0] * 256
    rgba = QColor(color)
    rgba.setAlpha(255)
    for index in range(1, 256):
        table[index] = rgba.rgba()
    image.setColorTable(table)
    return image.copy()
