"""The Station tab's layout, and where the last-reject picture goes.

Above: the frame view and, at the right, the operator column (verdict, controls, last reject)
in a scroll area. Below: the score-history strip. On a short window (1280x800) the column
cannot give the last reject a usable height once every control is shown, so the picture moves
to the right-hand end of the history strip, and back under the controls when the window grows.
Where it goes depends only on what the controls need, not on where it is, so it never flips
back and forth; a few pixels of hysteresis absorb the verdict's detail lines coming and going.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QSplitter, QVBoxLayout, QWidget

PICTURE_MIN_PX = 110
"""The least picture height the column must leave for the last reject to stay in it."""

HYSTERESIS_PX = 16
"""Extra height the column must have before the picture moves back into it."""

STRIP_REJECT_WIDTH = 260
"""Width of the last reject at the end of the history strip (its caption is cut beyond it)."""

HISTORY_HEIGHT = 130
"""The history strip's height when the page is first laid out."""

_UNLIMITED = 16777215  # QWIDGETSIZE_MAX


def _needed_height(widget: QWidget, width: int) -> int:
    """The height ``widget`` asks for at ``width`` (word-wrapped labels grow with less width)."""
    return widget.heightForWidth(width) if widget.hasHeightForWidth() else widget.sizeHint().height()


class StationPage(QSplitter):
    """The Station tab: frame view and operator column above, score history below.

    Args:
        frame_view: The live frame.
        verdict: The :class:`~inspector.gui.verdict_panel.VerdictPanel`; its ``reject_view`` is placed here.
        operator: The :class:`~inspector.gui.operator_panel.OperatorPanel`.
        history: The :class:`~inspector.gui.score_history.ScoreHistory`.

    Attributes:
        panel: The scroll area holding the operator column.
        strip: The bottom strip: the history, and the last reject on a short window.
    """

    def __init__(self, frame_view: QWidget, verdict: QWidget, operator: QWidget, history: QWidget,
                 parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self._verdict = verdict
        self._operator = operator
        self.reject_view: QWidget = verdict.reject_view
        self._column = QWidget()
        self._column_layout = QVBoxLayout(self._column)
        self._column_layout.setContentsMargins(6, 0, 4, 0)
        self._column_layout.addWidget(verdict)
        self._column_layout.addWidget(operator)
        # The last reject takes what is left below the controls (or moves to the strip).
        self._column_layout.addWidget(self.reject_view, 1)
        self.panel = QScrollArea()  # small screens scroll the controls rather than squeeze the frame
        self.panel.setWidget(self._column)
        self.panel.setWidgetResizable(True)
        self.panel.setFrameShape(QScrollArea.Shape.NoFrame)
        self.panel.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.panel.setMinimumWidth(320)
        self.panel.setMaximumWidth(400)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(frame_view)
        top.addWidget(self.panel)
        top.setStretchFactor(0, 1)
        history.setMinimumHeight(110)
        self.strip = QWidget()
        self._strip_layout = QHBoxLayout(self.strip)
        self._strip_layout.setContentsMargins(0, 0, 0, 0)
        self._strip_layout.addWidget(history, 1)
        self.addWidget(top)
        self.addWidget(self.strip)
        self.setStretchFactor(0, 1)
        self.setSizes([700, HISTORY_HEIGHT])

        self._reject_in_strip = False
        # Placed after the layouts have settled, never from inside a resize or layout pass.
        self._place_timer = QTimer(self)
        self._place_timer.setSingleShot(True)
        self._place_timer.setInterval(0)
        self._place_timer.timeout.connect(self.place_reject)
        self.panel.viewport().installEventFilter(self)
        self._column.installEventFilter(self)

    @property
    def reject_in_strip(self) -> bool:
        """Whether the last reject is at the end of the history strip (else under the controls)."""
        return self._reject_in_strip

    def spare_height(self) -> int:
        """What the column leaves under the controls for the last reject (its caption included)."""
        margins = self._column_layout.contentsMargins()
        width = self.panel.viewport().width() - margins.left() - margins.right()
        spacing = self._column_layout.spacing()
        used = (margins.top() + margins.bottom() + _needed_height(self._verdict, width) + spacing
                + _needed_height(self._operator, width) + spacing)
        return self.panel.viewport().height() - used

    def reject_height_needed(self) -> int:
        """The column height the last reject needs: caption, spacing and a usable picture."""
        caption = self._verdict.last_ng_caption
        return caption.sizeHint().height() + self.reject_view.layout().spacing() + PICTURE_MIN_PX

    def place_reject(self) -> None:
        """Put the last reject under the controls if the column has room for it, else in the strip."""
        spare, needed = self.spare_height(), self.reject_height_needed()
        if self._reject_in_strip and spare >= needed + HYSTERESIS_PX:
            self._move_reject(to_strip=False)
        elif not self._reject_in_strip and spare < needed:
            self._move_reject(to_strip=True)

    def _move_reject(self, to_strip: bool) -> None:
        view = self.reject_view
        column = self._column_layout
        if to_strip:
            view.setFixedWidth(STRIP_REJECT_WIDTH)
            self._strip_layout.addWidget(view)  # reparented: the column's layout lets it go
            column.addStretch(1)  # the controls stay together at the top
        else:
            last = column.itemAt(column.count() - 1)
            if last is not None and last.spacerItem() is not None:
                column.takeAt(column.count() - 1)
            view.setMinimumWidth(0)
            view.setMaximumWidth(_UNLIMITED)
            column.addWidget(view, 1)
        view.show()
        self._reject_in_strip = to_strip

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        """A resize of the column's viewport, or a new layout of the column: place the reject again."""
        if event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest):
            self._place_timer.start()
        return False
