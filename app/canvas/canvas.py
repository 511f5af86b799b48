"""The image canvas: a QGraphicsView that shows one radiograph, its mask and the edit tool's marks.

It knows navigation (wheel zoom about the cursor, pan by middle-drag / space+drag / hand tool, fit,
1:1) and reports right-drags for window/level; everything else a left-click does belongs to the
active edit tool (``app.tools``), so the canvas stays ignorant of masks and models.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from .overlay import MaskOverlay

MIN_SCALE = 0.02
MAX_SCALE = 40.0
WHEEL_STEP = 1.0015  # per 1/8 degree of wheel rotation: one notch (120) = ~20 %


class ImageCanvas(QGraphicsView):
    cursor_moved = Signal(int, int)  # image column/row under the cursor, (-1, -1) outside
    window_drag_started = Signal()
    window_dragged = Signal(int, int)  # pixels moved since the drag started (dx, dy)
    window_drag_finished = Signal()
    zoom_changed = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(12, 12, 14))
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.PreventContextMenu)

        self.image_item = QGraphicsPixmapItem()
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self.image_item)
        self.overlay = MaskOverlay(self.scene())
        self.image_size: tuple[int, int] | None = None  # (width, height)
        self.tool = None  # an app.tools.Tool, or None
        self.hand_mode = False
        self._space_down = False
        self._pan_anchor: QPoint | None = None
        self._wl_anchor: QPoint | None = None
        self._fit_on_resize = True
        self.side_markers: tuple[str, str, bool] | None = None  # (image-left, image-right, from the file)

    # -- content --------------------------------------------------------------------------------
    def set_image(self, image: QImage, fit: bool = True) -> None:
        """Show a new radiograph; fits it to the view unless ``fit`` is False (re-render after W/L)."""
        self.set_pixmap(QPixmap.fromImage(image))
        self.image_size = (image.width(), image.height())
        self.scene().setSceneRect(QRectF(0, 0, image.width(), image.height()))
        if fit:
            self.fit()

    def set_pixmap(self, pixmap: QPixmap, scale: float = 1.0) -> None:
        """Replace the displayed pixels; ``scale`` > 1 shows a decimated preview at full size."""
        self.image_item.setPixmap(pixmap)
        self.image_item.setScale(scale)

    def clear(self) -> None:
        self.image_item.setPixmap(QPixmap())
        self.overlay.set_mask(None)
        self.image_size = None
        self.set_side_markers(None)

    def set_side_markers(self, markers: tuple[str, str, bool] | None) -> None:
        """The patient side shown at the view's left and right edges ("R"/"L"); a "?" marks an assumption."""
        self.side_markers = markers
        self.viewport().update()

    def drawForeground(self, painter: QPainter, rect) -> None:
        super().drawForeground(painter, rect)
        if self.side_markers is None or self.image_size is None:
            return
        left, right, from_file = self.side_markers
        painter.save()
        painter.resetTransform()  # viewport coordinates: the markers stay put while panning and zooming
        font = painter.font()
        font.setPointSize(16)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(255, 214, 10) if from_file else QColor(200, 200, 200))
        view = self.viewport().rect()
        suffix = "" if from_file else "?"
        margin = 10
        painter.drawText(QRectF(margin, view.height() / 2 - 15, 60, 30),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), left + suffix)
        painter.drawText(QRectF(view.width() - 60 - margin, view.height() / 2 - 15, 60, 30),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), right + suffix)
        painter.restore()

    def current_pixmap(self) -> QPixmap:
        return self.image_item.pixmap()

    # -- navigation -----------------------------------------------------------------------------
    def scale_factor(self) -> float:
        return float(self.transform().m11())

    def fit(self) -> None:
        if self.image_size:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self._fit_on_resize = True
            self.zoom_changed.emit(self.scale_factor())

    def actual_size(self) -> None:
        self.zoom_to(1.0)

    def zoom_to(self, scale: float) -> None:
        factor = scale / max(self.scale_factor(), 1e-9)
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.scale(factor, factor)
        self.setTransformationAnchor(anchor)
        self._fit_on_resize = False
        self.zoom_changed.emit(self.scale_factor())

    def zoom_by(self, factor: float, about: QPoint | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under ``about`` (viewport pixels) in place."""
        target = min(MAX_SCALE, max(MIN_SCALE, self.scale_factor() * factor))
        factor = target / max(self.scale_factor(), 1e-9)
        about = about if about is not None else self.viewport().rect().center()
        fixed = self.mapToScene(about)
        anchor = self.transformationAnchor()
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.scale(factor, factor)
        self.setTransformationAnchor(anchor)
        moved = self.mapFromScene(fixed) - about
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self._fit_on_resize = False
        self.zoom_changed.emit(self.scale_factor())

    def image_point(self, view_pos: QPoint | QPointF) -> QPointF:
        return self.mapToScene(view_pos.toPoint() if isinstance(view_pos, QPointF) else view_pos)

    # -- events ---------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit_on_resize:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta and self.image_size:
            self.zoom_by(WHEEL_STEP**delta, event.position().toPoint())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        if self.tool is not None and self.tool.key_press(event):
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self._restore_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        left = button == Qt.MouseButton.LeftButton
        if button == Qt.MouseButton.MiddleButton or (left and (self._space_down or self.hand_mode)):
            self._pan_anchor = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.RightButton and self.image_size:
            self._wl_anchor = event.position().toPoint()
            self.window_drag_started.emit()
        elif left and self.tool is not None and self.image_size:
            self.tool.press(self.image_point(event.position()), event.modifiers())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        if self._pan_anchor is not None:
            delta = pos - self._pan_anchor
            self._pan_anchor = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
        elif self._wl_anchor is not None:
            delta = pos - self._wl_anchor
            self.window_dragged.emit(delta.x(), delta.y())
        elif self.tool is not None and self.image_size and event.buttons() & Qt.MouseButton.LeftButton:
            self.tool.move(self.image_point(event.position()), event.modifiers())
        elif self.tool is not None and self.image_size:
            self.tool.hover(self.image_point(event.position()))
        self._report_cursor(pos)
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if self._pan_anchor is not None and button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_anchor = None
            self._restore_cursor()
        elif self._wl_anchor is not None and button == Qt.MouseButton.RightButton:
            self._wl_anchor = None
            self.window_drag_finished.emit()
        elif button == Qt.MouseButton.LeftButton and self.tool is not None and self.image_size:
            self.tool.release(self.image_point(event.position()), event.modifiers())
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.tool is not None and self.image_size:
            self.tool.double_click(self.image_point(event.position()))
        event.accept()

    def leaveEvent(self, event) -> None:
        self.cursor_moved.emit(-1, -1)
        super().leaveEvent(event)

    def _report_cursor(self, view_pos: QPoint) -> None:
        if not self.image_size:
            return
        point = self.mapToScene(view_pos)
        x, y = int(point.x() // 1), int(point.y() // 1)
        width, height = self.image_size
        self.cursor_moved.emit(*((x, y) if 0 <= x < width and 0 <= y < height else (-1, -1)))

    def _restore_cursor(self) -> None:
        if self.hand_mode or self._space_down:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif self.tool is not None:
            self.viewport().setCursor(self.tool.cursor)
        else:
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)

    def set_tool(self, tool, hand: bool = False) -> None:
        """Make ``tool`` receive left-clicks; ``hand`` turns left-drag into panning instead."""
        if self.tool is not None and self.tool is not tool:
            self.tool.deactivate()
        self.tool = tool
        self.hand_mode = hand
        if tool is not None:
            tool.activate()
        self._restore_cursor()
