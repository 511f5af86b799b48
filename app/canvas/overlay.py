"""The mask drawn over the radiograph: a translucent fill and/or a crisp outline.

The fill is one indexed pixmap whose opacity is the item's (so the slider costs nothing); the
outline is a vector path with a cosmetic pen, so it stays one screen pixel wide at any zoom.
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsScene

from .qimage import mask_to_qimage

FILL_COLOR = QColor(0, 200, 255)
OUTLINE_COLOR = QColor(255, 214, 0)
OVERLAY_Z = 10


def mask_outline(mask: np.ndarray) -> QPainterPath:
    """Boundary polygons of the mask as a painter path (pixel-corner coordinates)."""
    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for contour in contours:
        points = contour.reshape(-1, 2)
        if len(points) < 2:
            continue
        path.moveTo(QPointF(points[0][0] + 0.5, points[0][1] + 0.5))
        for x, y in points[1:]:
            path.lineTo(QPointF(x + 0.5, y + 0.5))
        path.closeSubpath()
    return path


class MaskOverlay:
    """Owns the two scene items that show one mask; modes: "fill" (fill + outline) or "contour"."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.fill = QGraphicsPixmapItem()
        self.fill.setZValue(OVERLAY_Z)
        self.fill.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.outline = QGraphicsPathItem()
        self.outline.setZValue(OVERLAY_Z + 1)
        pen = QPen(OUTLINE_COLOR, 1.5)
        pen.setCosmetic(True)
        self.outline.setPen(pen)
        scene.addItem(self.fill)
        scene.addItem(self.outline)
        self.mode = "fill"
        self.visible = True
        self.opacity = 0.4
        self.has_mask = False
        self._apply()

    def set_mask(self, mask: np.ndarray | None) -> None:
        if mask is None:
            self.fill.setPixmap(QPixmap())
            self.outline.setPath(QPainterPath())
            self.has_mask = False
        else:
            self.fill.setPixmap(QPixmap.fromImage(mask_to_qimage(mask, FILL_COLOR)))
            self.outline.setPath(mask_outline(mask))
            self.has_mask = True
        self._apply()

    def set_opacity(self, opacity: float) -> None:
        self.opacity = min(1.0, max(0.0, float(opacity)))
        self._apply()

    def set_mode(self, mode: str) -> None:
        self.mode = "contour" if mode == "contour" else "fill"
        self._apply()

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        self._apply()

    def _apply(self) -> None:
        shown = self.visible and self.has_mask
        self.fill.setOpacity(self.opacity)
        self.fill.setVisible(shown and self.mode == "fill")
        self.outline.setVisible(shown)
