"""Run-control icons painted in code (the platform's media icons are dark on a dark theme)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QPolygonF

_SIZE = 32


def _icon(draw, color: str) -> QIcon:
    pixmap = QPixmap(_SIZE, _SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(color))
    draw(painter)
    painter.end()
    return QIcon(pixmap)


def _triangle(x0: float, x1: float) -> QPolygonF:
    return QPolygonF([QPointF(x0, 6), QPointF(x1, 16), QPointF(x0, 26)])


def play_icon() -> QIcon:
    """A green play triangle."""
    return _icon(lambda p: p.drawPolygon(_triangle(9, 25)), "#40c057")


def pause_icon() -> QIcon:
    """Two amber bars."""
    return _icon(lambda p: (p.drawRect(QRectF(8, 6, 6, 20)), p.drawRect(QRectF(18, 6, 6, 20))), "#fab005")


def step_icon() -> QIcon:
    """A triangle against a bar."""
    return _icon(lambda p: (p.drawPolygon(_triangle(7, 20)), p.drawRect(QRectF(21, 6, 4, 20))), "#dee2e6")


def stop_icon() -> QIcon:
    """A red square."""
    return _icon(lambda p: p.drawRoundedRect(QRectF(8, 8, 16, 16), 2, 2), "#fa5252")
