"""The station window: frame view, verdict, score history, operator controls, calibration, batch review.

It wires the parts and runs the operator's commands. It only paints what the station hands it
(:class:`~inspector.gui.result_painter.ResultPainter`: each result shown as recorded, never
re-decided, at most one repaint per display tick); the Station tab's layout is
:class:`~inspector.gui.station_page.StationPage`, the actions and toolbar
:mod:`inspector.gui.window_actions`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QTabWidget

from inspector.export.accelerated import runtime_of
from inspector.gui.audit_trail import AuditTrail
from inspector.gui.audit_view import AuditView
from inspector.gui.batch_review import BatchReview
from inspector.gui.calibration_actions import CalibrationActions
from inspector.gui.calibration_view import CalibrationView
from inspector.gui.demo_progress import DemoProgress
from inspector.gui.drift_watch import DriftWatch
from inspector.gui.feedback_actions import FeedbackActions
from inspector.gui.frame_view import FrameView
from inspector.gui.icons import pause_icon, play_icon
from inspector.gui.operator_panel import OperatorPanel
from inspector.gui.refit_dialog import RefitDialog
from inspector.gui.region_dialog import RegionDialog
from inspector.gui.result_painter import ResultPainter
from inspector.gui.score_history import ScoreHistory
from inspector.gui.source_bar import SourceBar
from inspector.gui.station_page import StationPage
from inspector.gui.status_bar import StationStatusBar
from inspector.gui.unsaved_model import MODEL_FILTER, UnsavedModelGuard
from inspector.gui.verdict_panel import VerdictPanel
from inspector.gui.window_actions import build_actions
from inspector.gui.window_geometry import fit_to_screen, restore_geometry, saved_geometry

logger = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The inspection station.

    Args:
        station: The :class:`~inspector.workers.station.Station` doing the work.
        settings: The loaded :class:`~inspector.storage.settings.Settings` (updated on close).
        save_settings: Called with the settings when the window closes (``None``: not saved).

    Signals:
        frame_painted(object): the result just painted (tests and the benchmark listen).
    """

    frame_painted = Signal(object)

    def __init__(self, station, settings, save_settings=None) -> None:
        super().__init__()
        self.station = station
        self.settings = settings
        self._save_settings = save_settings
        self._run_state = "idle"
        self._override_for = (settings.last_model, settings.threshold_override)
        self.setWindowTitle("Inspector")
        fit_to_screen(self)

        self.frame_view = FrameView(settings.overlay_opacity)
        self.verdict = VerdictPanel()
        self.operator = OperatorPanel(settings.overlay_opacity, settings.segmentation_mode)
        self.history = ScoreHistory()
        self.calibration = CalibrationView()
        self.batch = BatchReview(station)
        self.batch.folder.set_path(settings.batch_folder or "")  # the batch folder of the last session
        self.audit = AuditTrail(station, parent=self)
        self.audit_view = AuditView(self.audit.refresh)
        self.feedback = FeedbackActions(station, self)
        self.calibration_actions = CalibrationActions(station, self.calibration, self.history, self.audit, self)
        self.demo_progress = DemoProgress(station, self)
        self.unsaved_guard = UnsavedModelGuard(station, self.audit, self)
        self.source_bar = SourceBar()
        if settings.last_source:
            self.source_bar.set_spec(settings.last_source)
        self.status = StationStatusBar()
        self.setStatusBar(self.status)
        self.drift_watch = DriftWatch(self.status, self.calibration, lambda: len(self.history.scores))
        self.painter = ResultPainter(station, self.frame_view, self.verdict, self.history, self.status,
                                     self.drift_watch, self)
        self._build_layout()
        build_actions(self)
        self._connect()

        self._status_timer = QTimer(self)
        self._status_timer.setInterval(500)
        self._status_timer.timeout.connect(self.status.refresh)
        self._status_timer.start()
        restore_geometry(self, settings.window_geometry)

    # -- construction ----------------------------------------------------------------------

    def _build_layout(self) -> None:
        # The Station tab; on a short window it moves the last reject to the history strip.
        self.station_page = StationPage(self.frame_view, self.verdict, self.operator, self.history)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.station_page, "Station")
        self.tabs.addTab(self.calibration, "Calibration")
        self.tabs.addTab(self.batch, "Batch review")
        self.tabs.addTab(self.audit_view, "Audit")
        self.setCentralWidget(self.tabs)

    def _connect(self) -> None:
        s = self.station
        w = s.inspection
        p = self.painter
        w.result_ready.connect(p.add_result)
        w.source_opened.connect(p.source_opened)
        w.source_state_changed.connect(p.source_state)
        w.run_state_changed.connect(p.run_state)
        w.run_state_changed.connect(self._on_run_state)
        w.run_state_changed.connect(self.status.set_run_state)
        w.recording_state_changed.connect(self.status.set_recording_state)
        w.resumed.connect(p.resumed)
        s.segmentation.overlay_ready.connect(p.show_overlay)
        p.painted.connect(self.frame_painted)
        s.model_changed.connect(self._on_model_changed)
        s.threshold_changed.connect(self._on_threshold)
        s.undo_available.connect(self.undo_action.setEnabled)
        s.message.connect(self.status.show_message)
        self.source_bar.open_requested.connect(self.open_source)
        self.operator.threshold_changed.connect(s.set_threshold)
        self.operator.threshold_reset.connect(lambda: s.set_threshold(None))
        self.operator.opacity_changed.connect(self.frame_view.set_opacity)
        self.operator.segmentation_mode_changed.connect(s.set_segmentation_mode)
        self.calibration.threshold_chosen.connect(s.set_threshold)
        self.calibration.calibration_chosen.connect(s.apply_calibration)
        self.audit.rows_loaded.connect(self.audit_view.set_rows)
        self.audit.recorded.connect(self.audit_view.refresh_if_shown)
        self.verdict.mark_requested.connect(self.mark_current)
        self.batch.mark_requested.connect(self.feedback.mark_files)
        self.history.mark_requested.connect(self.feedback.mark_point)
        self.tabs.currentChanged.connect(self._on_tab)
        self.status.drift_label.clicked.connect(lambda: self.tabs.setCurrentWidget(self.calibration))

    # -- commands ----------------------------------------------------------------------------

    def open_source(self, spec: str, start: bool = False) -> None:
        """Open ``spec`` on the inspection worker (and start it if asked)."""
        self.source_bar.set_spec(spec)
        self.settings.last_source = spec
        self.station.open_source(spec)
        if start:
            self.station.start()

    def toggle_run(self) -> None:
        """Space: start (opening the picked source if needed) or pause."""
        if self._run_state == "running":
            self.station.pause()
            return
        spec = self.source_bar.spec()
        if spec and (spec != self.settings.last_source or self._run_state in ("idle", "finished")):
            self.open_source(spec)
        self.station.start()

    def open_model(self) -> None:
        """O: choose a model file and load it on the model worker (asking first about an unsaved calibration)."""
        path = QFileDialog.getOpenFileName(self, "Open model", self.settings.last_model or "", MODEL_FILTER)[0]
        if path:
            self.unsaved_guard.open_model(path)

    def save_model(self) -> None:
        """Ctrl+S: save the model in use."""
        if self.station.model is None:
            self.status.show_message("no model to save")
            return
        path = QFileDialog.getSaveFileName(self, "Save model", self.station.model_path or "model.safetensors",
                                           MODEL_FILTER)[0]
        if path:
            self.station.save_model(path)

    def open_refit(self) -> RefitDialog:
        """Ctrl+R: the refit dialog (non-blocking), prefilled from the model in use."""
        dialog = getattr(self, "_refit_dialog", None)
        if dialog is not None and not dialog.isVisible() and not dialog.running \
                and dialog.model_in_use is not self.station.model:
            dialog.deleteLater()  # filled in for another model: a fresh form for this one
            dialog = None
        if dialog is None:
            dialog = self._refit_dialog = RefitDialog(self.station, parent=self)
        dialog.show()
        dialog.raise_()
        return dialog

    def undo_model(self) -> None:
        """Ctrl+Z: back to the previous model (recorded as a model swap, reason undo)."""
        self.audit.next_swap_reason("undo")
        self.station.undo_model()
        self.audit.next_swap_reason("")

    def mark_current(self, label: str) -> bool:
        """G / D: the decision shown was wrong: keep its image as ``good`` or ``bad`` feedback.

        On the batch review tab the keys mark the selected rows (never the live frame hidden
        behind the tab); on the other tabs they mark nothing.
        """
        current = self.tabs.currentWidget()
        if current is self.batch:
            rows = self.batch.selected_rows()
            if not rows:
                self.station.message.emit("nothing to mark: select rows of the batch table first")
                return False
            return self.feedback.mark_files(rows, label) > 0
        if self.tabs.currentIndex() != 0:
            self.station.message.emit("G / D mark the decision shown on the Station tab")
            return False
        marked = self.feedback.mark_result(self._shown, label)
        if marked and self._shown is not None:
            frame = self._shown.frame
            self.history.note_mark(int(frame.frame_id), str(frame.source), label)
        return marked

    def refit_with_feedback(self, reference_dir: str | None = None):
        """Ctrl+Shift+R: a new model from the references plus the marked-good images (undoable)."""
        return self.feedback.refit(reference_dir)

    def open_regions(self, image=None) -> RegionDialog | None:
        """Ctrl+Shift+M: draw regions on the frame shown (or an image chosen), then refit with them."""
        if image is None and self._shown is not None:
            image = self._shown.frame.image
        if image is None:
            path = QFileDialog.getOpenFileName(self, "Reference image to draw on", "",
                                               "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff)")[0]
            if not path:
                return None
            from inspector.core.imageio import read_image

            image = read_image(path)
        refit, note = None, ""
        if self.station.model is not None:
            refit = lambda mask: self.feedback.refit(mask=mask, reason="refit with regions")  # noqa: E731
            marks = self.feedback.marked_counts()
            if marks["good"] or marks["bad"]:
                note = (f"The refit also uses the operator's marks: {marks['good']} marked good "
                        f"(added to the references), {marks['bad']} marked defect (known bad for the threshold).")
        dialog = RegionDialog(image, refit=refit, parent=self, refit_note=note)
        dialog.setModal(False)
        dialog.show()
        self._region_dialog = dialog
        return dialog

    def open_batch(self) -> None:
        """Ctrl+B: the batch review tab; asks for a folder if none is set."""
        self.tabs.setCurrentWidget(self.batch)
        if not self.batch.folder.path:
            self.batch.folder.browse()

    def toggle_fullscreen(self) -> None:
        """F11."""
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # -- station answers -----------------------------------------------------------------------

    def on_result(self, result: Any) -> None:
        """A decided frame: note it; the newest one is painted at the next display tick."""
        self.painter.add_result(result)

    @property
    def _shown(self) -> Any:
        """The result on screen (``None`` before the first)."""
        return self.painter.shown

    @property
    def _latest(self) -> Any:
        """The newest result received."""
        return self.painter.latest

    def _on_tab(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.calibration:
            self.calibration.set_recent_available(len(self.history.scores))

    def _on_model_changed(self, model: Any, path: str) -> None:
        previous = getattr(self, "_model", None)
        self._model = model
        if previous is None or previous.detector is not model.detector:
            self.history.clear_history()
            self.drift_watch.reset(model, self.station.threshold)
        elif previous.calibration is not model.calibration:
            # The watch compares with the new held-out good scores; with the same ones (a policy, a
            # known-bad folder) it keeps the recent frames it had.
            same_good = tuple(previous.calibration.good_scores) == tuple(model.calibration.good_scores)
            self.drift_watch.reset(model, self.station.threshold, keep_recent=same_good)
        if path:
            self.settings.last_model = path
            self.settings.add_recent_model(path)
        self.history.set_unit(model.threshold)
        regions = getattr(model, "regions", None)
        inspected = None if regions is None else regions.inspected
        self.painter.set_regions(model.model_hash, inspected)
        self.verdict.set_unit(model.threshold)
        self.verdict.set_model(model.model_hash)
        self.operator.set_calibration(model.calibration)
        self.calibration.set_calibration(model.calibration, self.station.threshold)
        self.calibration.set_recent_available(len(self.history.scores))
        name = os.path.basename(path) if path else "unsaved"
        ignored = f" · {regions.ignored_fraction:.0%} ignored" if regions is not None else ""
        self.status.set_model_text(f"{model.detector_kind} · {model.backbone or '-'} · {model.model_hash[:10]} · "
                                   f"{name}{ignored} · {runtime_of(model)}")
        self.setWindowTitle(f"Inspector — {name}")
        last_model, override = self._override_for
        self._override_for = (None, None)
        if override is not None and path and last_model and os.path.abspath(path) == os.path.abspath(last_model):
            self.audit.threshold_restored(override)  # as the last session left it: no change to record
            self.station.set_threshold(override)
        else:
            self._on_threshold(self.station.threshold)

    def _on_threshold(self, threshold: float) -> None:
        self.drift_watch.set_threshold(threshold)
        self.operator.set_threshold(threshold)
        self.history.set_threshold(threshold)
        self.calibration.set_threshold(threshold)
        self.painter.show_verdict()
        self.settings.threshold_override = self.station.operator_threshold

    def _on_run_state(self, state: str) -> None:
        self._run_state = state
        running = state == "running"
        self.run_action.setText("Pause" if running else "Start")
        self.run_action.setIcon(pause_icon() if running else play_icon())

    # -- life ----------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Persist the settings and stop every worker thread."""
        self.operator.flush()
        self.audit.flush_threshold()
        self.painter.stop()
        self._status_timer.stop()
        self.settings.window_geometry = saved_geometry(self)
        self.settings.overlay_opacity = self.operator.opacity_slider.value() / 100.0
        self.settings.segmentation_mode = self.operator.mode_combo.currentData()
        if self.batch.folder.path:  # an emptied field keeps the last folder
            self.settings.batch_folder = self.batch.folder.path
        if self._save_settings is not None:
            try:
                self._save_settings(self.settings)
            except OSError as exc:
                logger.warning("cannot save settings: %s", exc)
        self.hide()  # waiting for the workers to finish their frame must not look like a frozen window
        self.station.shutdown()
        super().closeEvent(event)
