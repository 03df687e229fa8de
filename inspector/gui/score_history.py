"""The scrolling score history: scores of the last frames, coloured by the current threshold.

Scores are drawn relative to the model's calibrated threshold (1.0 =
calibrated), the operator's one unit; raw scores are what is kept.

Scores are kept; moving the threshold only re-splits them into OK and NG
(a re-decision, never a rescoring).

Each point drawn can be corrected: a click (left or right) on a point opens a
menu with *Mark good* and *Mark defect* for that frame, which go through the
same feedback path as the live view and the batch table
(:class:`~inspector.gui.feedback_actions.FeedbackActions`). Marked points get a
ring in the colour of their new label.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QLabel, QMenu, QWidget, QWidgetAction

from inspector.core.policy import Threshold
from inspector.gui.theme import MUTED, NG_COLOR, OK_COLOR, PANEL, WARN_COLOR, to_pixmap

PICK_RADIUS_PX = 10
"""How close (screen pixels) a click must be to a point to pick it."""

THUMBNAIL_PX = 180
"""Side of the picture of the frame at the top of a point's menu (what is being marked)."""

IMAGE_BUDGET_BYTES = 256 * 1024 * 1024
"""Pixels of frames without a file (camera, video) kept so that they can still be marked."""


@dataclass(frozen=True)
class HistoryPoint:
    """One decision of the history, as it was recorded, with what marking it needs.

    Attributes:
        index: Position in the session (the plot's x).
        raw_score, threshold, anomalous, model_hash: The recorded decision.
        path: The image file, for file sources (``None`` for cameras).
        source, frame_id: Where the frame came from.
        image: The frame's pixels when it has no file and they are still held (else ``None``).
    """

    index: int
    raw_score: float
    threshold: float
    anomalous: bool
    model_hash: str
    path: str | None
    source: str
    frame_id: int
    image: np.ndarray | None = None

    @property
    def name(self) -> str:
        """The file name, or ``frame-NNNNNN`` for a camera frame."""
        return os.path.basename(self.path) if self.path else f"frame-{self.frame_id:06d}"

    @property
    def markable(self) -> bool:
        """Whether its image can still be kept as feedback (a file, or pixels still held)."""
        return bool(self.path) or self.image is not None


class ScoreHistory(pg.PlotWidget):
    """A plot of the last ``capacity`` raw scores with a horizontal threshold line.

    All scores of the session are kept (8 bytes a frame) so that the OK/NG
    counts can be re-decided too; only the last ``capacity`` are drawn. The
    axes move in steps (a quarter of the window at a time, and the score axis
    only grows), because re-rendering the axes is most of the cost of a redraw.

    Args:
        capacity: How many frames the plot shows.
        parent: Qt parent.

    Signals:
        mark_requested(object, str): a :class:`HistoryPoint` and ``"good"`` or ``"bad"``.
    """

    mark_requested = Signal(object, str)

    def __init__(self, capacity: int = 300, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.capacity = capacity
        self._points: OrderedDict[int, HistoryPoint] = OrderedDict()
        self._image_bytes = 0
        self._marks: dict[int, str] = {}
        self.menu: QMenu | None = None
        self._buffer = np.zeros(1024, dtype=np.float64)
        self._count = 0
        self._x_start = -1
        self._x_width = 0
        self._y_top = 0.0
        self._rule = Threshold(1.0)
        self._unit = 1.0
        self._dirty = False
        self.setBackground(PANEL)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.showGrid(x=False, y=False)  # a grid makes the axis repaint with every new point
        self.setLabel("left", "score (1 = cal.)")
        self.setLabel("bottom", "frame")
        self.getPlotItem().getAxis("left").setWidth(56)
        self.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self._line = self.plot([], [], pen=pg.mkPen(MUTED, width=1))
        self._ok = pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush(OK_COLOR))
        self._ng = pg.ScatterPlotItem(size=9, pen=None, brush=pg.mkBrush(NG_COLOR))
        self._marked = pg.ScatterPlotItem(size=15, brush=None)
        self.addItem(self._ok)
        self.addItem(self._ng)
        self.addItem(self._marked)
        self.setToolTip("Click a point to mark that frame good or defect")
        self.scene().sigMouseClicked.connect(self._on_scene_click)
        self._dirty = True
        self.refresh()  # frame axis 0..75 from the start, not pyqtgraph's 0..1
        self.threshold_line = pg.InfiniteLine(
            pos=self._rule.raw, angle=0, movable=False,
            pen=pg.mkPen(WARN_COLOR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
            label="threshold {value:.4g}", labelOpts={"position": 0.98, "color": WARN_COLOR, "anchors": [(1, 1), (1, 1)]},
        )
        self.addItem(self.threshold_line)

    @property
    def scores(self) -> np.ndarray:
        """All raw scores of the session, oldest first (a copy)."""
        return self._buffer[: self._count].copy()

    def add_score(self, raw_score: float) -> None:
        """Append one frame's raw score; the plot updates at the next :meth:`refresh`."""
        if self._count == len(self._buffer):
            self._buffer = np.concatenate([self._buffer, np.zeros_like(self._buffer)])
        self._buffer[self._count] = float(raw_score)
        self._count += 1
        self._dirty = True

    def add_result(self, result) -> HistoryPoint:
        """Append one decided frame (an :class:`~inspector.core.records.InspectionResult`).

        Its score joins the history and the decision is kept for marking while it is
        drawn (the last ``capacity`` frames). Pixels are kept only for frames without a
        file, within :data:`IMAGE_BUDGET_BYTES` (the oldest are let go first).
        """
        frame = result.frame
        image = None if frame.path else frame.image
        point = HistoryPoint(self._count, float(result.raw_score), float(result.threshold), bool(result.anomalous),
                             str(result.model_hash or ""), frame.path, str(frame.source), int(frame.frame_id), image)
        self.add_score(result.raw_score)
        self._points[point.index] = point
        if image is not None:
            self._image_bytes += image.nbytes
        self._forget_old()
        return point

    def _forget_old(self) -> None:
        oldest = self._count - self.capacity
        while self._points:
            index, point = next(iter(self._points.items()))
            if index >= oldest:
                break
            self._drop(index)
        for index in list(self._points):
            if self._image_bytes <= IMAGE_BUDGET_BYTES:
                break
            point = self._points[index]
            if point.image is not None:
                self._image_bytes -= point.image.nbytes
                self._points[index] = replace(point, image=None)

    def _drop(self, index: int) -> None:
        point = self._points.pop(index)
        self._marks.pop(index, None)
        if point.image is not None:
            self._image_bytes -= point.image.nbytes

    def point(self, index: int) -> HistoryPoint | None:
        """The decision at ``index`` while it is drawn (``None``: too old, or scores only)."""
        return self._points.get(index)

    def marks(self) -> dict[int, str]:
        """The frames marked from the plot: index -> ``"good"`` or ``"bad"``."""
        return dict(self._marks)

    def clear_history(self) -> None:
        """Forget all scores (e.g. when another model's scores are not comparable)."""
        self._points.clear()
        self._marks.clear()
        self._image_bytes = 0
        self._count = 0
        self._x_start = -1
        self._x_width = 0
        self._y_top = 0.0
        self._dirty = True
        self.refresh()

    def set_unit(self, calibrated: float) -> None:
        """Draw scores relative to ``calibrated`` (the model's raw calibrated threshold)."""
        self._unit = max(float(calibrated), 1e-12)
        self.threshold_line.setValue(self._rule.raw / self._unit)
        self._y_top = 0.0
        self._dirty = True
        self.refresh()

    def set_threshold(self, threshold: Threshold | float) -> None:
        """Re-decide the kept scores at the raw ``threshold`` and redraw at once."""
        self._rule = Threshold.of(threshold)
        self.threshold_line.setValue(self._rule.raw / self._unit)
        self._y_top = 0.0  # rescale to the new threshold
        self._dirty = True
        self.refresh()

    def counts(self) -> tuple[int, int]:
        """OK and NG counts of the kept scores at the current threshold."""
        ng = int(np.count_nonzero(self._rule.decide_many(self._buffer[: self._count])))
        return self._count - ng, ng

    def refresh(self) -> None:
        """Redraw if anything changed since the last redraw."""
        if not self._dirty:
            return
        self._dirty = False
        start = max(0, self._count - self.capacity)
        scores = self._buffer[start : self._count]
        index = np.arange(start, self._count)
        flagged = self._rule.decide_many(scores)
        shown = scores / self._unit
        self._line.setData(index, shown)
        self._ok.setData(index[~flagged], shown[~flagged])
        self._ng.setData(index[flagged], shown[flagged])
        self._draw_marks()
        step = max(1, self.capacity // 4)
        x_start = max(0, -(-(self._count - self.capacity) // step) * step)
        # Until the window is full it grows in the same steps: the first frames are not squeezed into
        # a sixth of the plot, where their points are too close to click.
        width = min(self.capacity, max(step, -(-self._count // step) * step))
        if (x_start, width) != (self._x_start, self._x_width) or not self._y_top:
            self._x_start, self._x_width = x_start, width
            self.setXRange(x_start, x_start + width, padding=0.01)
        top = max(float(shown.max()) if len(shown) else 0.0, self._rule.raw / self._unit) * 1.15
        if top > self._y_top or top < self._y_top * 0.5:
            self._y_top = top * 1.2
            self.setYRange(0, self._y_top, padding=0)

    # -- marking from the plot -------------------------------------------------------------------

    def _draw_marks(self) -> None:
        marked = [i for i in self._marks if i < self._count]
        spots = [{"pos": (i, self._buffer[i] / self._unit),
                  "pen": pg.mkPen(OK_COLOR if self._marks[i] == "good" else NG_COLOR, width=2)} for i in marked]
        self._marked.setData(spots=spots)

    def index_near(self, x: float, y: float, radius_px: float = PICK_RADIUS_PX) -> int | None:
        """The drawn point nearest the view position ``(x, y)`` (plot units), within ``radius_px``."""
        start = max(0, self._count - self.capacity)
        if self._count == start:
            return None
        width, height = self.getPlotItem().getViewBox().viewPixelSize()
        index = np.arange(start, self._count)
        shown = self._buffer[start:self._count] / self._unit
        distance = np.hypot((index - x) / max(width, 1e-12), (shown - y) / max(height, 1e-12))
        nearest = int(np.argmin(distance))
        return int(index[nearest]) if distance[nearest] <= radius_px else None

    def view_position(self, index: int) -> QPoint:
        """Where the point ``index`` is drawn, in this widget's pixels (for tests and tooltips)."""
        box = self.getPlotItem().getViewBox()
        scene = box.mapViewToScene(pg.Point(float(index), float(self._buffer[index] / self._unit)))
        return self.mapFromScene(scene)

    def _on_scene_click(self, event) -> None:
        box = self.getPlotItem().getViewBox()
        if not box.sceneBoundingRect().contains(event.scenePos()):
            return
        view = box.mapSceneToView(event.scenePos())
        index = self.index_near(view.x(), view.y())
        if index is None:
            return
        event.accept()
        self.open_menu(index, event.screenPos().toPoint())

    def open_menu(self, index: int, at: QPoint | None = None) -> QMenu:
        """The menu of the point ``index``: what was decided, *Mark good*, *Mark defect*; shown at ``at``."""
        if self.menu is not None:  # one menu at a time
            self.menu.close()
            self.menu.deleteLater()
        point = self._points.get(index)
        menu = self.menu = QMenu(self)
        raw = float(self._buffer[index]) if index < self._count else float("nan")
        if point is None:
            title = menu.addAction(f"frame {index}: score {raw / self._unit:.3f} (too old to mark)")
            title.setEnabled(False)
        else:
            verdict = "NG" if point.anomalous else "OK"
            thumbnail = _thumbnail(point)
            if thumbnail is not None:
                picture = QLabel()
                picture.setPixmap(thumbnail)
                picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
                picture.setContentsMargins(6, 6, 6, 2)
                holder = QWidgetAction(menu)
                holder.setDefaultWidget(picture)
                menu.addAction(holder)
            title = menu.addAction(f"{point.name}: {verdict}, score {point.raw_score / self._unit:.3f}")
            title.setEnabled(False)
            menu.addSeparator()
            good = menu.addAction("Mark good (a false reject)")
            bad = menu.addAction("Mark defect (an escape)")
            for action, label in ((good, "good"), (bad, "bad")):
                action.setEnabled(point.markable)
                action.setData(label)
                action.triggered.connect(lambda _=False, p=point, lab=label: self._mark(p, lab))
            if not point.markable:
                menu.addAction("the camera frame's pixels are no longer held").setEnabled(False)
            mark = self._marks.get(index)
            if mark:
                menu.addAction(f"already marked {'good' if mark == 'good' else 'defect'}").setEnabled(False)
        if at is not None:
            menu.popup(at)
        return menu

    def note_mark(self, frame_id: int, source: str, label: str) -> None:
        """Ring the drawn point of a decision marked elsewhere (G / D on the live view)."""
        for index in reversed(list(self._points)):
            point = self._points[index]
            if point.frame_id == frame_id and point.source == source:
                self._marks[index] = label
                self._draw_marks()
                return

    def _mark(self, point: HistoryPoint, label: str) -> None:
        self._marks[point.index] = label
        self._draw_marks()
        self.mark_requested.emit(point, label)


def _thumbnail(point: HistoryPoint):
    """A small picture of the frame (its file, or the pixels still held); ``None`` when neither can be had."""
    image = point.image
    if image is None and point.path:
        from inspector.core.imageio import read_image

        try:
            image = read_image(point.path)
        except OSError:  # ImageReadError included: the file went or changed
            return None
    if image is None:
        return None
    return to_pixmap(image).scaled(THUMBNAIL_PX, THUMBNAIL_PX, Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
