"""Drawing the inspection and ignore regions on a reference image, with rectangles.

Two tools: *Inspect* rectangles (when there is at least one, only their inside is
inspected) and *Ignore* rectangles (a label, a serial number: never inspected,
even inside an inspect rectangle). The result is a mask picture, white =
inspected, black = ignored, the same picture ``inspector fit --mask`` takes: it
can be saved as PNG, or used at once for a refit of the model in use (on the fit
worker, undoable like every refit).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inspector.gui.theme import MUTED, NG_COLOR, OK_COLOR, to_pixmap
from inspector.segmentation.overlay import ignored_layer

INSPECT, IGNORE = "inspect", "ignore"


def mask_of(shape: tuple[int, int], rectangles: list[tuple[str, tuple[int, int, int, int]]]) -> np.ndarray:
    """The mask picture (uint8, 255 inspected, 0 ignored) of ``(kind, (x, y, w, h))`` rectangles."""
    height, width = shape
    inspects = [r for kind, r in rectangles if kind == INSPECT]
    mask = np.zeros((height, width), np.uint8) if inspects else np.full((height, width), 255, np.uint8)
    for x, y, w, h in inspects:
        mask[max(y, 0):y + h, max(x, 0):x + w] = 255
    for kind, (x, y, w, h) in rectangles:
        if kind == IGNORE:
            mask[max(y, 0):y + h, max(x, 0):x + w] = 0
    return mask


class MaskCanvas(QWidget):
    """The image with its rectangles; drag with the left button to add one of the current kind.

    Signals:
        changed(): a rectangle was added or the rectangles were cleared.
    """

    changed = Signal()

    def __init__(self, image: np.ndarray, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image = np.ascontiguousarray(image)
        self._pixmap = to_pixmap(self.image)
        self.kind = IGNORE
        self.rectangles: list[tuple[str, tuple[int, int, int, int]]] = []
        self._drag: QPoint | None = None
        self._current: QPoint | None = None
        self.setMinimumSize(320, 240)
        self.setMouseTracking(False)

    @property
    def shape(self) -> tuple[int, int]:
        """The image's ``(H, W)``."""
        return int(self.image.shape[0]), int(self.image.shape[1])

    def add_rectangle(self, kind: str, x: int, y: int, width: int, height: int) -> None:
        """Add a rectangle in image pixels."""
        if kind not in (INSPECT, IGNORE):
            raise ValueError(f"kind must be {INSPECT!r} or {IGNORE!r}")
        if width > 0 and height > 0:
            self.rectangles.append((kind, (int(x), int(y), int(width), int(height))))
            self.update()
            self.changed.emit()

    def clear_rectangles(self) -> None:
        """Remove every rectangle (everything inspected again)."""
        self.rectangles.clear()
        self.update()
        self.changed.emit()

    def mask(self) -> np.ndarray:
        """The mask picture of the rectangles (:func:`mask_of`)."""
        return mask_of(self.shape, self.rectangles)

    # -- geometry and painting -----------------------------------------------------------

    def _target(self) -> QRectF:
        height, width = self.shape
        scale = min(self.width() / width, self.height() / height)
        w, h = width * scale, height * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def to_image(self, point: QPoint) -> tuple[int, int]:
        """Widget coordinates to image pixels (clamped to the image)."""
        target = self._target()
        height, width = self.shape
        x = (point.x() - target.x()) * width / target.width()
        y = (point.y() - target.y()) * height / target.height()
        return int(min(max(x, 0), width)), int(min(max(y, 0), height))

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """The image, the ignored area as overlays draw it, and the rectangles' outlines."""
        painter = QPainter(self)
        target = self._target()
        painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        if self.rectangles:
            layer = ignored_layer(self.mask() > 0, self.shape)
            qimage = QImage(layer.data, layer.shape[1], layer.shape[0], layer.shape[1] * 4,
                            QImage.Format.Format_RGBA8888)
            painter.drawImage(target, qimage)
        height, width = self.shape
        sx, sy = target.width() / width, target.height() / height
        for kind, (x, y, w, h) in self.rectangles:
            pen = QPen(QColor(OK_COLOR if kind == INSPECT else NG_COLOR))
            pen.setWidth(2)
            painter.setPen(pen)
            painter.drawRect(QRectF(target.x() + x * sx, target.y() + y * sy, w * sx, h * sy))
        if self._drag is not None and self._current is not None:
            painter.setPen(QPen(QColor("#ffffff"), 1, Qt.PenStyle.DashLine))
            painter.drawRect(QRect(self._drag, self._current).normalized())
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """Start a rectangle."""
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = self._current = event.position().toPoint()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """Show the rectangle being drawn."""
        if self._drag is not None:
            self._current = event.position().toPoint()
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        """Finish the rectangle (in image pixels)."""
        if self._drag is None or event.button() != Qt.MouseButton.LeftButton:
            return
        x0, y0 = self.to_image(self._drag)
        x1, y1 = self.to_image(event.position().toPoint())
        self._drag = self._current = None
        self.add_rectangle(self.kind, min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))


class RegionDialog(QDialog):
    """Draw regions on ``image``; *Save mask…* writes the PNG, *Refit with these regions* fits a new model.

    Args:
        image: A reference image (RGB uint8).
        refit: Called with the mask picture to refit the model in use (``None``: no refit button).
        parent: Qt parent.
    """

    def __init__(self, image: np.ndarray, refit: Any = None, parent: QWidget | None = None,
                 refit_note: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Inspection and ignore regions")
        self.canvas = MaskCanvas(image)
        self.inspect_button = QPushButton("Inspect rectangle")
        self.ignore_button = QPushButton("Ignore rectangle")
        group = QButtonGroup(self)
        for button, kind in ((self.inspect_button, INSPECT), (self.ignore_button, IGNORE)):
            button.setCheckable(True)
            group.addButton(button)
            button.toggled.connect(lambda on, k=kind: on and setattr(self.canvas, "kind", k))
        self.ignore_button.setChecked(True)
        for button in (self.inspect_button, self.ignore_button):
            button.setStyleSheet("QPushButton:checked { background: #2f6fb3; color: white; }")
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.canvas.clear_rectangles)
        self.save_button = QPushButton("Save mask…")
        self.save_button.clicked.connect(self.save_mask)
        self.refit_button = QPushButton("Refit with these regions")
        self.refit_button.setObjectName("primary")
        self.refit_button.setVisible(refit is not None)
        self._refit = refit
        self.refit_button.clicked.connect(self.refit)
        # What else the refit fits on (the operator's marks), said before it is started.
        self.refit_note = QLabel(refit_note)
        self.refit_note.setWordWrap(True)
        self.refit_note.setStyleSheet(f"color: {MUTED};")
        self.refit_note.setVisible(refit is not None and bool(refit_note))
        self.refit_button.setToolTip(refit_note)
        self.summary = QLabel("")
        self.summary.setStyleSheet(f"color: {MUTED};")
        self.canvas.changed.connect(self._update_summary)
        tools = QHBoxLayout()
        for widget in (self.inspect_button, self.ignore_button, self.clear_button):
            tools.addWidget(widget)
        tools.addStretch(1)
        tools.addWidget(self.summary)
        actions = QHBoxLayout()
        actions.addWidget(self.refit_note, 1)
        actions.addWidget(self.save_button)
        actions.addWidget(self.refit_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Drag rectangles: green = inspect only there, red = ignore (labels, serial numbers)."))
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(actions)
        self.resize(760, 620)
        self._update_summary()

    def mask(self) -> np.ndarray:
        """The mask picture drawn so far (255 inspected, 0 ignored)."""
        return self.canvas.mask()

    def save_mask(self, path: str | None = None) -> str:
        """Write the mask as PNG (asks where when ``path`` is not given); returns the path ("" if cancelled)."""
        if not path:
            path = QFileDialog.getSaveFileName(self, "Save mask", "mask.png", "PNG images (*.png)")[0]
        if path:
            from inspector.core.imageio import write_image

            write_image(path, self.mask())  # a small PNG; the dialog is modal to the operator anyway
        return path or ""

    def refit(self) -> None:
        """Refit the model in use with the mask drawn, then close."""
        if self._refit is not None:
            self._refit(self.mask())
            self.accept()

    def _update_summary(self) -> None:
        ignored = 1.0 - float((self.mask() > 0).mean())
        self.summary.setText(f"{ignored:.0%} ignored" if ignored else "everything inspected")
        self.refit_button.setEnabled(ignored < 1.0)
