"""The scrolling score history: scores of the last frames, coloured by the current threshold.

Scores are drawn relative to the model's calibrated threshold (1.0 =
calibrated), the operator's one unit; raw scores are what is kept.

Scores are kept; moving the threshold only re-splits them into OK and NG
(a re-decision, never a rescoring).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from inspector.core.policy import Threshold
from inspector.gui.theme import MUTED, NG_COLOR, OK_COLOR, PANEL, WARN_COLOR


class ScoreHistory(pg.PlotWidget):
    """A plot of the last ``capacity`` raw scores with a horizontal threshold line.

    All scores of the session are kept (8 bytes a frame) so that the OK/NG
    counts can be re-decided too; only the last ``capacity`` are drawn. The
    axes move in steps (a quarter of the window at a time, and the score axis
    only grows), because re-rendering the axes is most of the cost of a redraw.

    Args:
        capacity: How many frames the plot shows.
        parent: Qt parent.
    """

    def __init__(self, capacity: int = 300, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.capacity = capacity
        self._buffer = np.zeros(1024, dtype=np.float64)
        self._count = 0
        self._x_start = -1
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
        self.addItem(self._ok)
        self.addItem(self._ng)
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

    def clear_history(self) -> None:
        """Forget all scores (e.g. when another model's scores are not comparable)."""
        self._count = 0
        self._x_start = -1
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
        step = max(1, self.capacity // 4)
        x_start = max(0, -(-(self._count - self.capacity) // step) * step)
        if x_start != self._x_start or not self._y_top:
            self._x_start = x_start
            self.setXRange(x_start, x_start + self.capacity, padding=0.01)
        top = max(float(shown.max()) if len(shown) else 0.0, self._rule.raw / self._unit) * 1.15
        if top > self._y_top or top < self._y_top * 0.5:
            self._y_top = top * 1.2
            self.setYRange(0, self._y_top, padding=0)
