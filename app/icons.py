"""Toolbar icons drawn with QPainter, so the bundle ships no image files and icons suit the dark theme."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon, QPainter, QPainterPath, QPen, QPixmap, QPolygonF

SIZE = 32
FG = QColor(222, 226, 231)
ACCENT = QColor(0, 200, 255)
GREEN = QColor(90, 220, 120)
RED = QColor(240, 90, 90)


def _pen(color: QColor = FG, width: float = 2.2) -> QPen:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _text(p: QPainter, text: str, size: int = 13, color: QColor = FG) -> None:
    font = QFont()
    font.setPixelSize(size)
    font.setBold(True)
    p.setFont(font)
    p.setPen(color)
    p.drawText(QRectF(0, 0, SIZE, SIZE), Qt.AlignmentFlag.AlignCenter, text)


def _draw(name: str, p: QPainter) -> None:
    p.setPen(_pen())
    p.setBrush(Qt.BrushStyle.NoBrush)
    if name == "open":
        p.drawPolyline(QPolygonF([QPointF(9, 5), QPointF(19, 5), QPointF(25, 11), QPointF(25, 27), QPointF(9, 27), QPointF(9, 5)]))
        p.drawPolyline(QPolygonF([QPointF(19, 5), QPointF(19, 11), QPointF(25, 11)]))
    elif name == "folder":
        path = QPainterPath(QPointF(4, 9))
        for x, y in ((12, 9), (15, 12), (28, 12), (28, 25), (4, 25)):
            path.lineTo(x, y)
        path.closeSubpath()
        p.drawPath(path)
    elif name == "hand":
        p.drawLine(QPointF(16, 4), QPointF(16, 28))
        p.drawLine(QPointF(4, 16), QPointF(28, 16))
        for a, b, c in (((16, 4), (12, 8), (20, 8)), ((16, 28), (12, 24), (20, 24)), ((4, 16), (8, 12), (8, 20)), ((28, 16), (24, 12), (24, 20))):
            p.drawPolyline(QPolygonF([QPointF(*b), QPointF(*a), QPointF(*c)]))
    elif name == "brush":
        p.setBrush(QBrush(ACCENT))
        p.setPen(_pen(ACCENT, 1.5))
        p.drawEllipse(QPointF(12, 20), 7, 7)
        p.setPen(_pen(FG, 3))
        p.drawLine(QPointF(17, 15), QPointF(27, 5))
    elif name == "eraser":
        p.setPen(_pen(FG, 2))
        p.setBrush(QBrush(QColor(240, 120, 120)))
        p.drawPolygon(QPolygonF([QPointF(6, 20), QPointF(17, 9), QPointF(26, 18), QPointF(18, 26), QPointF(12, 26)]))
        p.drawLine(QPointF(11, 15), QPointF(21, 25))
    elif name in ("polygon_add", "polygon_erase"):
        color = ACCENT if name == "polygon_add" else RED
        p.setPen(_pen(color, 2))
        p.setBrush(QBrush(QColor(color.red(), color.green(), color.blue(), 70)))
        p.drawPolygon(QPolygonF([QPointF(6, 8), QPointF(22, 5), QPointF(27, 20), QPointF(15, 27), QPointF(5, 20)]))
        _sign(p, "+" if name == "polygon_add" else "-", color)
    elif name == "box":
        pen = _pen(GREEN, 2)
        pen.setStyle(Qt.PenStyle.DashLine)
        p.setPen(pen)
        p.drawRect(QRectF(6, 7, 20, 18))
    elif name in ("point_positive", "point_negative"):
        color = GREEN if name == "point_positive" else RED
        p.setBrush(QBrush(color))
        p.setPen(_pen(QColor(20, 20, 20), 1.5))
        p.drawEllipse(QPointF(16, 16), 9, 9)
        p.setPen(_pen(QColor(20, 20, 20), 2.5))
        p.drawLine(QPointF(11, 16), QPointF(21, 16))
        if name == "point_positive":
            p.drawLine(QPointF(16, 11), QPointF(16, 21))
    elif name == "fit":
        for (x, y), (dx, dy) in (((5, 5), (1, 1)), ((27, 5), (-1, 1)), ((5, 27), (1, -1)), ((27, 27), (-1, -1))):
            p.drawPolyline(QPolygonF([QPointF(x, y + 7 * dy), QPointF(x, y), QPointF(x + 7 * dx, y)]))
        p.drawRect(QRectF(11, 11, 10, 10))
    elif name == "actual":
        _text(p, "1:1", 13)
    elif name == "invert":
        p.setBrush(QBrush(FG))
        p.drawPie(QRectF(5, 5, 22, 22), 90 * 16, 180 * 16)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawEllipse(QRectF(5, 5, 22, 22))
    elif name == "undo" or name == "redo":
        path = QPainterPath(QPointF(9, 13))
        path.cubicTo(QPointF(14, 6), QPointF(26, 8), QPointF(25, 19))
        path.cubicTo(QPointF(24, 25), QPointF(18, 27), QPointF(13, 26))
        if name == "redo":
            p.translate(SIZE, 0)
            p.scale(-1, 1)
        p.drawPath(path)
        p.drawPolyline(QPolygonF([QPointF(8, 6), QPointF(8, 14), QPointF(16, 14)]))
    elif name == "accept":
        p.setPen(_pen(GREEN, 3.2))
        p.drawPolyline(QPolygonF([QPointF(6, 17), QPointF(13, 24), QPointF(26, 8)]))
    elif name == "reject":
        p.setPen(_pen(RED, 3.2))
        p.drawLine(QPointF(8, 8), QPointF(24, 24))
        p.drawLine(QPointF(24, 8), QPointF(8, 24))
    elif name == "next" or name == "previous":
        if name == "previous":
            p.translate(SIZE, 0)
            p.scale(-1, 1)
        p.drawPolyline(QPolygonF([QPointF(10, 7), QPointF(20, 16), QPointF(10, 25)]))
        p.drawLine(QPointF(24, 7), QPointF(24, 25))
    elif name == "mask":
        p.setBrush(QBrush(QColor(0, 200, 255, 110)))
        p.setPen(_pen(QColor(255, 214, 0), 1.8))
        p.drawEllipse(QRectF(5, 6, 10, 20))
        p.drawEllipse(QRectF(17, 6, 10, 20))
    else:
        _text(p, name[:2].upper())


def _sign(p: QPainter, sign: str, color: QColor) -> None:
    p.setPen(_pen(QColor(255, 255, 255), 2.4))
    p.drawLine(QPointF(22, 26), QPointF(30, 26))
    if sign == "+":
        p.drawLine(QPointF(26, 22), QPointF(26, 30))


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    pixmap = QPixmap(SIZE, SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    _draw(name, painter)
    painter.end()
    return QIcon(pixmap)
