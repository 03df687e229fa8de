"""The frame view: the newest frame, its heatmap as a translucent layer, and region outlines.

The heatmap is a second image item with an RGBA lookup table, so changing the
opacity repaints without recomputing anything. Values are the model's
normalized map (1.0 = calibrated pixel threshold), coloured as saved overlays
are (:mod:`inspector.segmentation.heat_colours`): below half the threshold the
layer is fully transparent.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from inspector.core.records import Heatmap
from inspector.gui.theme import BACKGROUND, NG_COLOR
from inspector.segmentation.heat_colours import HEAT_MAX, heat_rgba_table
from inspector.segmentation.overlay import ignored_layer

INFO_FILL = "#3b4654"
"""Banner fill for information (waiting for frames, nothing new); alerts are red."""
HEAT_LEVELS = (0.0, HEAT_MAX)  # map values shown: 0 .. twice the pixel threshold


class FrameView(pg.GraphicsLayoutWidget):
    """Shows one RGB frame with an optional heatmap layer and region boxes.

    Args:
        opacity: Initial heatmap opacity (0..1).
        parent: Qt parent.
    """

    def __init__(self, opacity: float = 0.5, parent=None) -> None:
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.ci.setContentsMargins(0, 0, 0, 0)
        self.view: pg.ViewBox = self.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setDefaultPadding(0.01)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setLookupTable(heat_rgba_table())
        self.heat_item.setZValue(10)
        self.heat_item.setOpacity(opacity)
        self.view.addItem(self.image_item)
        self.view.addItem(self.heat_item)
        # The model's ignored regions, drawn as saved overlays draw them (dimmed, hatched).
        self.ignore_item = pg.ImageItem(axisOrder="row-major")
        self.ignore_item.setZValue(12)
        self.ignore_item.setVisible(False)
        self.view.addItem(self.ignore_item)
        self._inspected: np.ndarray | None = None
        self._ignore_shape: tuple[int, int] | None = None
        self.caption = pg.TextItem(anchor=(0, 0), color="#e9ecef", fill=pg.mkBrush(0, 0, 0, 150))
        self.caption.setZValue(20)
        self.caption.setParentItem(self.view)
        self.caption.setPos(6, 6)
        self.caption.setVisible(False)
        self.banner = pg.TextItem(anchor=(0.5, 0.5), color="#ffffff", fill=pg.mkBrush(NG_COLOR))
        self.banner.setZValue(30)
        self.banner.setParentItem(self.view)
        font = self.banner.textItem.font()
        font.setPointSize(22)
        font.setBold(True)
        self.banner.setFont(font)
        self.banner.setVisible(False)
        self.view.sigResized.connect(self._place_banner)
        self._boxes: list[QGraphicsRectItem] = []
        self._shape: tuple[int, int] | None = None
        self.heatmap_shown = False
        self.frame_id: object = None

    def set_opacity(self, opacity: float) -> None:
        """Heatmap opacity, 0 (hidden) to 1."""
        self.heat_item.setOpacity(float(opacity))

    def show_frame(self, image: np.ndarray, heatmap: Heatmap | None = None, caption: str = "",
                   frame_id: object = None) -> None:
        """Show ``image`` (HxWx3 uint8 RGB); the previous heatmap goes unless one is given."""
        self.image_item.setImage(image, autoLevels=False, levels=(0, 255))
        self.image_item.setVisible(True)
        shape = image.shape[:2]
        if shape != self._shape:
            self._shape = shape
            self.view.autoRange(padding=0.01)
        self.frame_id = frame_id
        self._update_ignored()
        self._set_caption(caption)
        if heatmap is None:
            self.clear_heatmap()
        else:
            self.show_heatmap(heatmap)

    def set_inspected(self, inspected: np.ndarray | None) -> None:
        """The model's inspected region (bool mask, any size); ``None``: the whole frame is inspected."""
        self._inspected = None if inspected is None else np.asarray(inspected, dtype=bool)
        self._ignore_shape = None
        self._update_ignored()

    @property
    def ignored_shown(self) -> bool:
        """Whether an ignored area is drawn over the frame."""
        return self.ignore_item.isVisible()

    def _update_ignored(self) -> None:
        if self._inspected is None or self._shape is None or self._inspected.all():
            self.ignore_item.setVisible(False)
            return
        if self._ignore_shape != self._shape:
            # Drawn once per frame size, not per frame.
            self._ignore_shape = self._shape
            self.ignore_item.setImage(ignored_layer(self._inspected, self._shape), autoLevels=False, levels=(0, 255))
            self.ignore_item.setRect(QRectF(0, 0, self._shape[1], self._shape[0]))
        self.ignore_item.setVisible(True)

    def show_heatmap(self, heatmap: Heatmap) -> None:
        """Lay ``heatmap`` over the current frame (stretched to it if its size differs)."""
        values = np.asarray(heatmap.values, dtype=np.float32)
        self.heat_item.setImage(values, autoLevels=False, levels=HEAT_LEVELS)
        if self._shape is not None and values.shape[:2] != self._shape:
            self.heat_item.setRect(QRectF(0, 0, self._shape[1], self._shape[0]))
        else:
            self.heat_item.setRect(QRectF(0, 0, values.shape[1], values.shape[0]))
        self.heat_item.setVisible(True)
        self._set_boxes(heatmap)
        self.heatmap_shown = True

    def clear_heatmap(self) -> None:
        """Hide the heatmap layer and region boxes."""
        self.heat_item.setVisible(False)
        self._set_boxes(None)
        self.heatmap_shown = False

    def clear_frame(self) -> None:
        """Show nothing.

        Not named ``clear``: GraphicsLayoutWidget puts its layout's ``clear`` (which removes the
        view box) on every instance.
        """
        self.image_item.setVisible(False)
        self.ignore_item.setVisible(False)
        self.clear_heatmap()
        self._set_caption("")
        self._shape = None
        self.frame_id = None

    def show_banner(self, text: str, tone: str = "alert") -> None:
        """A large message across the view (e.g. CAMERA LOST); ``""`` hides it.

        ``tone`` ``"alert"`` (red, the default) or ``"info"`` (neutral: waiting, nothing new).
        """
        self.banner.fill = pg.mkBrush(NG_COLOR if tone == "alert" else INFO_FILL)
        self.banner.setText(f"  {text}  " if text else "")
        self.banner.setVisible(bool(text))
        self.banner.update()
        self._place_banner()

    @property
    def banner_text(self) -> str:
        """The banner shown ("" when hidden)."""
        return self.banner.textItem.toPlainText().strip() if self.banner.isVisible() else ""

    def _place_banner(self, *_: object) -> None:
        rect = self.view.boundingRect()
        self.banner.setPos(rect.center())

    def _set_caption(self, text: str) -> None:
        self.caption.setText(text)
        self.caption.setVisible(bool(text))

    def _set_boxes(self, heatmap: Heatmap | None) -> None:
        for box in self._boxes:
            self.view.removeItem(box)
        self._boxes = []
        if heatmap is None:
            return
        pen = QPen(QColor(NG_COLOR))
        pen.setWidth(2)
        pen.setCosmetic(True)
        for region in heatmap.regions[:20]:
            box = QGraphicsRectItem(region.x, region.y, region.width, region.height)
            box.setPen(pen)
            box.setBrush(Qt.BrushStyle.NoBrush)
            box.setZValue(15)
            self.view.addItem(box)
            self._boxes.append(box)
