"""Painting the station's answers on the Station tab: the newest frame, its verdict, the last reject.

Each result arrives complete (verdict, score, threshold, fast map) as a queued signal and is
shown as recorded, never re-decided. Results are coalesced: at most one repaint per display
tick, always of the newest frame. The banners over the frame say why nothing new is painted:
the source is lost, a hot folder waits for its first frame, a folder was already decided.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

PAINT_INTERVAL_MS = 33


def frame_name(frame) -> str:
    """How a frame is named on screen: its file name, or its number for a camera."""
    return os.path.basename(frame.path) if frame.path else f"frame {frame.frame_id}"


class ResultPainter(QObject):
    """Paints results, overlays and banners on the frame view, verdict panel and history.

    Args:
        station: The :class:`~inspector.workers.station.Station` (its threshold in use).
        frame_view, verdict, history, status: The widgets painted.
        drift_watch: The :class:`~inspector.gui.drift_watch.DriftWatch` fed every raw score.

    Signals:
        painted(object): the result just painted.
    """

    painted = Signal(object)

    def __init__(self, station, frame_view, verdict, history, status, drift_watch,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self.frame_view = frame_view
        self.verdict = verdict
        self.history = history
        self.status = status
        self.drift_watch = drift_watch
        self.latest: Any = None  # the newest result received
        self.shown: Any = None  # the result on screen
        self._source = ""
        self._resumed = 0  # files of the opened folder this model had already decided
        self._pending_inspected: tuple[str, Any] | None = None  # regions waiting for their model's first frame
        self._waiting = False  # the "waiting for the first frame" banner is up
        self._frames_since_open = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAINT_INTERVAL_MS)
        self._timer.timeout.connect(self.paint)

    def add_result(self, result: Any) -> None:
        """A decided frame: note it; the newest one is painted at the next display tick."""
        self.latest = result
        self.history.add_result(result)
        self.status.note_result(result.latency_ms)
        self.drift_watch.add(result.raw_score)
        if not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        """No more repaints (the window closes)."""
        self._timer.stop()

    def paint(self) -> None:
        """Paint the newest result (its frame only if it is not on screen yet), the verdict and the history."""
        result = self.latest
        if result is None:
            return
        if result is not self.shown:
            self.shown = result
            if self._waiting:
                self._waiting = False
                self.frame_view.show_banner("")
            pending = self._pending_inspected
            if pending is not None and result.model_hash == pending[0]:
                self._pending_inspected = None
                self.frame_view.set_inspected(pending[1])
            frame = result.frame
            self.frame_view.show_frame(frame.image, result.heatmap, caption=frame_name(frame), frame_id=frame.frame_id)
        self.show_verdict()
        self.history.refresh()
        self.painted.emit(result)

    def show_verdict(self) -> None:
        """The verdict of the result on screen, or none while the source is lost; the session's counts."""
        result = self.shown
        if self.status.state in ("lost", "reconnecting"):
            # Frames captured before the loss may still arrive: no verdict until the source is back.
            self.verdict.set_verdict(None, detail=self.status.source_label.text().strip())
        elif result is None:
            self.verdict.set_verdict(None)
        else:
            self.verdict.set_verdict(result, f"{frame_name(result.frame)}  ·  {result.latency_ms:.0f} ms",
                                     self.station.threshold)
        self.verdict.set_counts(*self.history.counts())

    def show_overlay(self, result: Any, overlay: Any) -> None:
        """A reject's overlay is ready: it becomes the last reject."""
        self.verdict.set_last_reject(overlay, f"{frame_name(result.frame)}  score "
                                              f"{self.verdict.relative(result.raw_score):.2f}")

    def set_regions(self, model_hash: str, inspected: Any) -> None:
        """A new model's inspected regions: drawn now, or with its first frame if another model's is shown."""
        shown = self.shown
        if shown is not None and shown.model_hash != model_hash:
            # The frame on screen was decided (and mapped) by the previous model: its regions come
            # with the first frame this model decides.
            self._pending_inspected = (model_hash, inspected)
        else:
            self._pending_inspected = None
            self.frame_view.set_inspected(inspected)

    def source_opened(self, description: str) -> None:
        """A source was opened: frames counted from here."""
        self._source = description
        self._resumed = 0
        self._frames_since_open = self.history.scores.size

    def resumed(self, skipped: int) -> None:
        """The folder opened had ``skipped`` files this model already decided."""
        self._resumed = int(skipped)

    def source_state(self, state: str, message: str) -> None:
        """The source's state: a lost source takes the verdict down and says so over the frame."""
        self.status.set_source_state(state, message, self._source)
        if state in ("lost", "reconnecting"):
            # Never leave an old verdict up while no part is being inspected.
            self.show_verdict()
            self.frame_view.show_banner((message or "source lost").upper())
        else:
            self.frame_view.show_banner("")

    def run_state(self, state: str) -> None:
        """A run finished with nothing new, or runs with no frame yet: a banner says so."""
        resumed = self._resumed
        if state == "finished" and resumed and self.history.scores.size == self._frames_since_open:
            # A folder this model already decided: say so rather than leave an empty view.
            self.frame_view.show_banner(f"NOTHING NEW: {resumed} FILES ALREADY INSPECTED BY THIS MODEL", "info")
            self._waiting = False
            self.status.show_message(f"{self._source}: all {resumed} files were already decided by this model "
                                     "(inspector results lists them); add files, or review them in Batch review",
                                     30000)
        elif state == "running" and self.history.scores.size == self._frames_since_open and self.shown is None:
            # A hot folder or camera with nothing yet: say so instead of an empty view.
            self.frame_view.show_banner("WAITING FOR THE FIRST FRAME", "info")
            self._waiting = True
