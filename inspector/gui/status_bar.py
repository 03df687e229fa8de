"""The status bar: source state (camera lost!), frames per second, latency, model, messages."""

from __future__ import annotations

import collections
import logging
import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

from inspector.gui.theme import IDLE_COLOR, NG_COLOR, OK_COLOR, WARN_COLOR

logger = logging.getLogger(__name__)

_STATE_STYLE = {
    "running": (OK_COLOR, "LIVE"),
    "lost": (NG_COLOR, "LOST"),
    "reconnecting": (WARN_COLOR, "RECONNECTING"),
    "finished": (IDLE_COLOR, "FINISHED"),
    "closed": (IDLE_COLOR, "NO SOURCE"),
    "paused": (WARN_COLOR, "PAUSED"),
}


class ClickableLabel(QLabel):
    """A label that says when it is clicked (the drift state opens the calibration view)."""

    clicked = Signal()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """A left click emits :attr:`clicked`."""
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mouseReleaseEvent(event)


class ElidedLabel(QLabel):
    """One line of text cut at the right with an ellipsis to the width it has; the full text is its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        # Its text never sets the status bar's minimum width: it gets what the permanent labels leave.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)

    def set_full_text(self, text: str) -> None:
        """Show ``text`` (on one line), elided at the right when it does not fit."""
        self._full = " ".join(str(text).split())
        self.setToolTip(self._full)
        self._elide()

    def full_text(self) -> str:
        """The text as given, before eliding."""
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        """Elide again for the new width."""
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.contentsRect().width(), 0)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, width) if self._full else ""
        if shown != self.text():
            self.setText(shown)


class StationStatusBar(QStatusBar):
    """Shows what the bench needs at a glance; messages also go to the log.

    Messages are shown in :attr:`message_label`, cut at the right (never at the left) when long,
    with the whole message as its tooltip.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message_label = ElidedLabel()
        self.addWidget(self.message_label, 1)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self.clearMessage)
        self.source_label = QLabel("NO SOURCE")
        self.fps_label = QLabel("— fps")
        self.latency_label = QLabel("— ms")
        self.model_label = QLabel("no model")
        # "fusion · lite0 · hash · cells-regions-20261202-204412.safetensors · ..." made the window's
        # minimum width 1306 px: wider than a 1280x800 screen. Let it be cut instead (tooltip: all).
        self.model_label.setMinimumWidth(160)  # an explicit minimum replaces the label's full-text minimum
        self.drift_label = ClickableLabel("refs —")
        self.drift_label.setCursor(Qt.CursorShape.PointingHandCursor)
        self.drift_label.setToolTip("Whether recent parts look like the model's references (drift watch)")
        self.recording_label = QLabel("")
        self.recording_label.setStyleSheet(
            f"background: {NG_COLOR}; color: white; font-weight: 700; border-radius: 3px; padding: 2px 8px;")
        self.recording_label.setVisible(False)
        self.addPermanentWidget(self.recording_label)
        for label in (self.fps_label, self.latency_label):
            label.setMinimumWidth(80)
        self.addPermanentWidget(self.model_label)
        self.addPermanentWidget(self.drift_label)
        self.addPermanentWidget(self.fps_label)
        self.addPermanentWidget(self.latency_label)
        self.addPermanentWidget(self.source_label)
        self._arrivals: collections.deque[float] = collections.deque(maxlen=120)
        self._latency: float | None = None
        self.state = "closed"
        self.run_state = "idle"
        self._message = ""
        self._source = ""
        self.set_source_state("closed", "")

    def set_source_state(self, state: str, message: str, source: str = "") -> None:
        """Show the source state; ``lost`` is shown in red with the source's message."""
        self.state = state
        self._message, self._source = message, source
        if state in ("lost", "reconnecting"):
            self._arrivals.clear()
        self._show_state()

    def set_run_state(self, state: str) -> None:
        """The inspection worker's run state (``idle``, ``running``, ``paused``, ``finished``).

        A source that delivers frames is LIVE only while they are inspected: PAUSED while the
        worker is paused, NO SOURCE once it is stopped (the source released).
        """
        self.run_state = state
        self._show_state()

    def _show_state(self) -> None:
        state = self.state
        if state == "running" and self.run_state == "paused":
            state = "paused"
        elif state == "running" and self.run_state == "idle":
            state = "closed"  # stopped: the source is released (it says nothing when it is)
        color, word = _STATE_STYLE.get(state, (IDLE_COLOR, state.upper()))
        text = word
        if state in ("lost", "reconnecting") and self._message:
            text = self._message.upper() if state == "lost" else self._message
        elif self._source and state != "closed":
            text = f"{word}  {self._source}"
        self.source_label.setText(f" {text} ")
        self.source_label.setStyleSheet(
            f"background: {color}; color: white; font-weight: 700; border-radius: 3px; padding: 2px 8px;")

    def note_result(self, latency_ms: float) -> None:
        """Count one decided frame for the frames/s and latency figures."""
        self._arrivals.append(time.monotonic())
        self._latency = latency_ms if self._latency is None else 0.8 * self._latency + 0.2 * latency_ms

    def refresh(self) -> None:
        """Update the frames/s and latency labels."""
        now = time.monotonic()
        recent = [t for t in self._arrivals if now - t <= 2.0]
        if len(recent) >= 2:
            fps = (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)
            self.fps_label.setText(f"{fps:.1f} fps")
        else:
            self.fps_label.setText("— fps")
        self.latency_label.setText("— ms" if self._latency is None else f"{self._latency:.0f} ms")

    @property
    def fps_text(self) -> str:
        """The frames/s label text."""
        return self.fps_label.text()

    def set_drift(self, report) -> None:
        """Show the drift watch's state: watching, references OK, or DRIFT with the evidence as tooltip."""
        if report is None or report.drift is None:
            text, color = "refs: watching", IDLE_COLOR
        elif report.drift and _shifted(report):
            text, color = "REFS DO NOT MATCH", WARN_COLOR
        elif report.drift:
            # Only the reject count is high: a burst of defects looks the same as references that do not
            # represent production, so the label does not claim the latter.
            text, color = "MANY REJECTS", WARN_COLOR
        else:
            text, color = "refs OK", OK_COLOR
        self.drift_label.setText(f" {text} ")
        self.drift_label.setStyleSheet(
            f"background: {color}; color: white; font-weight: 700; border-radius: 3px; padding: 2px 8px;")
        tip = report.message if report is not None and report.message else "no frames yet"
        self.drift_label.setToolTip(f"{tip}\nClick: the calibration view (recent parts over the held-out "
                                    "scores; recalibrate on recent parts confirmed good)")

    @property
    def drift_text(self) -> str:
        """The drift watch's state as shown."""
        return self.drift_label.text().strip()

    def set_recording_state(self, state) -> None:
        """Show that decisions wait in the journal (a ``RecorderState``); hidden once it drains."""
        text = state.describe() if state is not None else ""
        before = self.recording_text
        if text == before:
            return
        self.recording_label.setText(f" {text} " if text else "")
        self.recording_label.setToolTip(f"journal: {state.journal_folder}" if text else "")
        self.recording_label.setVisible(bool(text))
        if text and not before:
            logger.warning("%s", text)
        elif not text:
            logger.info("results database available again: every decision recorded")

    @property
    def recording_text(self) -> str:
        """The journal indicator's text (empty when every decision reached the database)."""
        return self.recording_label.text().strip()

    def set_model_text(self, text: str) -> None:
        """Describe the model in use."""
        self.model_label.setText(text)
        self.model_label.setToolTip(text)

    def show_message(self, message: str, timeout_ms: int = 8000) -> None:
        """Show a message for ``timeout_ms`` (0: until the next one) and write it to the log."""
        logger.info("%s", message)
        self.message_label.set_full_text(message)
        self._message_timer.stop()
        if timeout_ms > 0:
            self._message_timer.start(timeout_ms)

    def currentMessage(self) -> str:  # noqa: N802 - QStatusBar's name
        """The whole message shown (not elided); "" when none."""
        return self.message_label.full_text()

    def clearMessage(self) -> None:  # noqa: N802 - QStatusBar's name
        """Remove the message."""
        self._message_timer.stop()
        self.message_label.set_full_text("")
        super().clearMessage()


def _shifted(report) -> bool:
    """Whether the frames judged good score higher than the held-out references (the shift test fired)."""
    return report.shift_p_value is not None and report.shift_p_value < report.alpha / 2
