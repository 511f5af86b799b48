"""Edit tools: what a left-click on the canvas does (brush, eraser, polygon, box and point prompts).

A tool draws its own preview in the scene while the user works and emits one signal when the
gesture is complete: ``edit_finished(mask, text)`` for pixel edits (the window turns it into an undo
command and saves it) or ``box_prompted`` / ``point_prompted`` for model prompts. Tools never touch
the store or the model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QKeyEvent, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsRectItem, QGraphicsScene

from . import rasterize

PREVIEW_Z = 20
PAINT_COLOR = QColor(0, 200, 255, 140)
ERASE_COLOR = QColor(255, 80, 80, 140)
PROMPT_COLOR = QColor(80, 255, 120)
NEGATIVE_COLOR = QColor(255, 70, 70)

MaskSource = Callable[[], "np.ndarray | None"]


def _pixel(point: QPointF) -> tuple[float, float]:
    """Scene coordinates (pixel corners) -> pixel-centre coordinates used by rasterisation and prompts."""
    return (point.x() - 0.5, point.y() - 0.5)


def _cosmetic(color: QColor, width: float = 1.5, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


class Tool(QObject):
    """Base: ignores everything. ``name`` is the id used by actions and settings."""

    name = "none"
    cursor = Qt.CursorShape.CrossCursor
    edit_finished = Signal(object, str)  # new mask (uint8 HxW), undo text

    def __init__(self, scene: QGraphicsScene, mask_source: MaskSource, parent=None) -> None:
        super().__init__(parent)
        self.scene = scene
        self.mask_source = mask_source

    def activate(self) -> None: ...

    def deactivate(self) -> None:
        self.cancel()

    def cancel(self) -> None: ...

    def press(self, point: QPointF, modifiers) -> None: ...

    def move(self, point: QPointF, modifiers) -> None: ...

    def release(self, point: QPointF, modifiers) -> None: ...

    def hover(self, point: QPointF) -> None: ...

    def double_click(self, point: QPointF) -> None: ...

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False


class BrushTool(Tool):
    """Freehand paint (``paint=True``) or erase with a round brush of ``size`` image pixels."""

    def __init__(self, scene, mask_source, paint: bool, parent=None) -> None:
        super().__init__(scene, mask_source, parent)
        self.paint = paint
        self.name = "brush" if paint else "eraser"
        self.size = 25.0
        self._points: list[QPointF] = []
        self._stroke = QGraphicsPathItem()
        self._stroke.setZValue(PREVIEW_Z)
        color = PAINT_COLOR if paint else ERASE_COLOR
        pen = QPen(color, self.size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        self._stroke.setPen(pen)
        self._ring = QGraphicsEllipseItem()
        self._ring.setZValue(PREVIEW_Z + 1)
        self._ring.setPen(_cosmetic(QColor(255, 255, 255, 200), 1.0))
        for item in (self._stroke, self._ring):
            item.setVisible(False)
            scene.addItem(item)

    def set_size(self, size: float) -> None:
        self.size = max(1.0, float(size))
        pen = self._stroke.pen()
        pen.setWidthF(self.size)
        self._stroke.setPen(pen)

    def deactivate(self) -> None:
        self.cancel()
        self._ring.setVisible(False)

    def cancel(self) -> None:
        self._points = []
        self._stroke.setVisible(False)
        self._stroke.setPath(QPainterPath())

    def hover(self, point: QPointF) -> None:
        radius = self.size / 2.0
        self._ring.setRect(QRectF(point.x() - radius, point.y() - radius, self.size, self.size))
        self._ring.setVisible(True)

    def press(self, point, modifiers) -> None:
        self._points = [point]
        self._update_preview()
        self._stroke.setVisible(True)

    def move(self, point, modifiers) -> None:
        self.hover(point)
        if self._points:
            self._points.append(point)
            self._update_preview()

    def release(self, point, modifiers) -> None:
        if not self._points:
            return
        points = [_pixel(p) for p in self._points]
        self.cancel()
        mask = self.mask_source()
        if mask is None:
            return
        self.edit_finished.emit(rasterize.stroke(mask, points, self.size, self.paint), "Brush" if self.paint else "Erase")

    def _update_preview(self) -> None:
        path = QPainterPath(self._points[0])
        if len(self._points) == 1:
            path.lineTo(self._points[0] + QPointF(0.01, 0))
        for p in self._points[1:]:
            path.lineTo(p)
        self._stroke.setPath(path)


class PolygonTool(Tool):
    """Click vertices; double-click or Enter closes and fills (``paint``) or clears the polygon."""

    def __init__(self, scene, mask_source, paint: bool, parent=None) -> None:
        super().__init__(scene, mask_source, parent)
        self.paint = paint
        self.name = "polygon_add" if paint else "polygon_erase"
        self._vertices: list[QPointF] = []
        self._outline = QGraphicsPathItem()
        self._outline.setZValue(PREVIEW_Z)
        color = PAINT_COLOR if paint else ERASE_COLOR
        self._outline.setPen(_cosmetic(QColor(color.red(), color.green(), color.blue()), 1.5))
        self._outline.setBrush(QBrush(QColor(color.red(), color.green(), color.blue(), 60)))
        scene.addItem(self._outline)
        self._cursor_point: QPointF | None = None

    def cancel(self) -> None:
        self._vertices = []
        self._cursor_point = None
        self._outline.setPath(QPainterPath())

    def press(self, point, modifiers) -> None:
        self._vertices.append(point)
        self._update_preview()

    def hover(self, point) -> None:
        if self._vertices:
            self._cursor_point = point
            self._update_preview()

    def double_click(self, point) -> None:
        self.finish()

    def key_press(self, event: QKeyEvent) -> bool:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish()
            return True
        if event.key() == Qt.Key.Key_Backspace and self._vertices:
            self._vertices.pop()
            self._update_preview()
            return True
        return super().key_press(event)

    def finish(self) -> None:
        vertices = [_pixel(p) for p in self._vertices]
        self.cancel()
        mask = self.mask_source()
        if len(vertices) < 3 or mask is None:
            return
        text = "Polygon add" if self.paint else "Polygon erase"
        self.edit_finished.emit(rasterize.polygon(mask, vertices, self.paint), text)

    def _update_preview(self) -> None:
        path = QPainterPath()
        if self._vertices:
            path.moveTo(self._vertices[0])
            for p in self._vertices[1:]:
                path.lineTo(p)
            if self._cursor_point is not None:
                path.lineTo(self._cursor_point)
        self._outline.setPath(path)


class PromptMarks:
    """The current image's prompts drawn in the scene: boxes (one per lung, say), positive (green) and
    negative (red) points. Which prompts act together is the controller's rule (``prompt_group``)."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.box_items: list[QGraphicsRectItem] = []
        self.point_items: list[QGraphicsEllipseItem] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []

    @property
    def empty(self) -> bool:
        return not self.boxes and not self.points

    def add_box(self, box: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = box
        item = QGraphicsRectItem(QRectF(x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0))
        item.setZValue(PREVIEW_Z)
        item.setPen(_cosmetic(PROMPT_COLOR, 1.5, Qt.PenStyle.DashLine))
        self.scene.addItem(item)
        self.box_items.append(item)
        self.boxes.append(box)

    def add_point(self, x: float, y: float, label: int) -> None:
        self.points.append((x, y))
        self.labels.append(int(label))
        item = QGraphicsEllipseItem(-5, -5, 10, 10)
        item.setFlag(QGraphicsEllipseItem.GraphicsItemFlag.ItemIgnoresTransformations)
        item.setPos(x + 0.5, y + 0.5)
        item.setZValue(PREVIEW_Z + 2)
        color = PROMPT_COLOR if label else NEGATIVE_COLOR
        item.setBrush(QBrush(color))
        item.setPen(_cosmetic(QColor(0, 0, 0), 1.0))
        self.scene.addItem(item)
        self.point_items.append(item)

    def clear(self) -> None:
        for item in self.box_items + self.point_items:
            self.scene.removeItem(item)
        self.box_items, self.point_items = [], []
        self.boxes, self.points, self.labels = [], [], []


class BoxPromptTool(Tool):
    """Drag a box around the lungs; the model re-runs on it (decoder only)."""

    name = "box"
    box_prompted = Signal(float, float, float, float)

    def __init__(self, scene, mask_source, parent=None) -> None:
        super().__init__(scene, mask_source, parent)
        self._start: QPointF | None = None
        self._rubber = QGraphicsRectItem()
        self._rubber.setZValue(PREVIEW_Z + 1)
        self._rubber.setPen(_cosmetic(PROMPT_COLOR, 1.0, Qt.PenStyle.DotLine))
        self._rubber.setVisible(False)
        scene.addItem(self._rubber)

    def cancel(self) -> None:
        self._start = None
        self._rubber.setVisible(False)

    def press(self, point, modifiers) -> None:
        self._start = point
        self._rubber.setRect(QRectF(point, point))
        self._rubber.setVisible(True)

    def move(self, point, modifiers) -> None:
        if self._start is not None:
            self._rubber.setRect(QRectF(self._start, point).normalized())

    def release(self, point, modifiers) -> None:
        if self._start is None:
            return
        rect = QRectF(self._start, point).normalized()
        self.cancel()
        if rect.width() >= 4 and rect.height() >= 4:
            (x0, y0), (x1, y1) = _pixel(rect.topLeft()), _pixel(rect.bottomRight())
            self.box_prompted.emit(x0, y0, x1, y1)


class PointPromptTool(Tool):
    """Click a lung (positive) or non-lung (negative) point; the model re-runs with all points so far."""

    point_prompted = Signal(float, float, int)

    def __init__(self, scene, mask_source, positive: bool, parent=None) -> None:
        super().__init__(scene, mask_source, parent)
        self.positive = positive
        self.name = "point_positive" if positive else "point_negative"

    def press(self, point, modifiers) -> None:
        x, y = _pixel(point)
        self.point_prompted.emit(x, y, 1 if self.positive else 0)
