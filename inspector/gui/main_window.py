"""The station window: frame view, verdict, score history, operator controls, calibration, batch review.

It only paints what the station hands it: each result arrives complete (verdict,
score, threshold, fast map) as a queued signal and is shown as recorded, never
re-decided. Results are coalesced: at most one repaint per display tick, always
of the newest frame.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QMenu,
    QTabWidget,
    QToolBar,
    QToolButton,
)

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
from inspector.gui.icons import pause_icon, play_icon, step_icon, stop_icon
from inspector.gui.operator_panel import OperatorPanel
from inspector.gui.refit_dialog import RefitDialog
from inspector.gui.region_dialog import RegionDialog
from inspector.gui.score_history import ScoreHistory
from inspector.gui.source_bar import SourceBar
from inspector.gui.station_page import StationPage
from inspector.gui.status_bar import StationStatusBar
from inspector.gui.unsaved_model import UnsavedModelGuard
from inspector.gui.verdict_panel import VerdictPanel
from inspector.gui.view_state import load_view_state, remember_batch_folder, restored_batch_folder, save_view_state
from inspector.gui.window_geometry import fit_to_screen, restore_geometry, saved_geometry

logger = logging.getLogger(__name__)

PAINT_INTERVAL_MS = 33
MODEL_FILTER = "Inspector models (*.safetensors);;All files (*)"


def _frame_name(frame) -> str:
    """How a frame is named on screen: its file name, or its number for a camera."""
    return os.path.basename(frame.path) if frame.path else f"frame {frame.frame_id}"


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
        self._latest: Any = None
        self._shown: Any = None
        self._source = ""
        self._run_state = "idle"
        self._resumed = 0  # files of the opened folder this model had already decided
        self._pending_inspected: tuple[str, Any] | None = None  # regions waiting for their model's first frame
        self._waiting = False  # the "waiting for the first frame" banner is up
        self._frames_since_open = 0
        self._override_for = (settings.last_model, settings.threshold_override)
        self.setWindowTitle("Inspector")
        fit_to_screen(self)

        self.frame_view = FrameView(settings.overlay_opacity)
        self.verdict = VerdictPanel()
        self.operator = OperatorPanel(settings.overlay_opacity, settings.segmentation_mode)
        self.history = ScoreHistory()
        self.calibration = CalibrationView()
        self.batch = BatchReview(station)
        self.view_state = load_view_state()  # the batch folder of the last session
        self.batch.folder.set_path(restored_batch_folder(self.view_state))
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
        self._build_layout()
        self._build_actions()
        self._connect()

        self._paint_timer = QTimer(self)
        self._paint_timer.setSingleShot(True)
        self._paint_timer.setInterval(PAINT_INTERVAL_MS)
        self._paint_timer.timeout.connect(self._paint)
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

    def _action(self, text: str, shortcut: str | None, slot, tip: str = "", icon: QIcon | None = None) -> QAction:
        action = QAction(text, self)
        if icon is not None:
            action.setIcon(icon)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else (tip or text))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.run_action = self._action("Start", "Space", self.toggle_run, "Start / pause", play_icon())
        self.step_action = self._action("Step", "S", self.station.step, "Inspect a single frame", step_icon())
        self.stop_action = self._action("Stop", None, self.station.stop, "Stop and release the source", stop_icon())
        self.open_model_action = self._action("Open model…", "O", self.open_model)
        self.save_model_action = self._action("Save model…", "Ctrl+S", self.save_model)
        self.refit_action = self._action("Refit…", "Ctrl+R", self.open_refit, "Refit from reference images")
        self.undo_action = self._action("Undo model", "Ctrl+Z", self.undo_model,
                                        "Go back to the previous model")
        self.mark_good_action = self._action("Mark good", "G", lambda: self.mark_current("good"),
                                             "The decision shown is a false reject: keep the image as good")
        self.mark_defect_action = self._action("Mark defect", "D", lambda: self.mark_current("bad"),
                                               "The decision shown is an escape: keep the image as a defect")
        # QAction.triggered passes checked=False: the slots with optional arguments get none.
        self.refit_feedback_action = self._action("Refit with feedback", "Ctrl+Shift+R",
                                                  lambda: self.refit_with_feedback(),
                                                  "Fit a new model on the references plus the images marked good")
        self.regions_action = self._action("Regions…", "Ctrl+Shift+M", lambda: self.open_regions(),
                                           "Draw the regions to inspect and to ignore, then refit")
        self.audit_tab_action = self._action("Audit", "Ctrl+4", lambda: self.tabs.setCurrentWidget(self.audit_view))
        self.undo_action.setEnabled(False)
        self.batch_action = self._action("Batch…", "Ctrl+B", self.open_batch, "Review a folder batch")
        self.calibrate_action = self._action("Calibrate", "Ctrl+K", lambda: self.tabs.setCurrentIndex(1))
        self.station_action = self._action("Station", "Ctrl+1", lambda: self.tabs.setCurrentIndex(0))
        self.fullscreen_action = self._action("Full screen", "F11", self.toggle_fullscreen)
        self.quit_action = self._action("Quit", "Ctrl+Q", self.close)
        bar = QToolBar("Station")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addWidget(self.source_bar)
        bar.addSeparator()
        for action in (self.run_action, self.step_action, self.stop_action):
            bar.addAction(action)
        bar.addSeparator()
        for action in (self.open_model_action, self.save_model_action):
            bar.addAction(action)
        # Refit, with its variants in the drop-down (the toolbar fits 1280 px with Undo and Batch).
        refit_menu = QMenu(self)
        refit_menu.addAction(self.refit_action)
        refit_menu.addAction(self.refit_feedback_action)
        refit_menu.addAction(self.regions_action)
        self.refit_button = QToolButton()
        self.refit_button.setDefaultAction(self.refit_action)
        self.refit_button.setMenu(refit_menu)
        self.refit_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        bar.addWidget(self.refit_button)
        for action in (self.undo_action, self.batch_action):
            bar.addAction(action)
        self.addToolBar(bar)

    def _connect(self) -> None:
        s = self.station
        w = s.inspection
        w.result_ready.connect(self.on_result)
        w.source_opened.connect(self._on_source_opened)
        w.source_state_changed.connect(self._on_source_state)
        w.run_state_changed.connect(self._on_run_state)
        w.run_state_changed.connect(self.status.set_run_state)
        w.recording_state_changed.connect(self.status.set_recording_state)
        w.resumed.connect(self._on_resumed)
        s.segmentation.overlay_ready.connect(self._on_overlay)
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
        self._latest = result
        self.history.add_result(result)
        self.status.note_result(result.latency_ms)
        self.drift_watch.add(result.raw_score)
        if not self._paint_timer.isActive():
            self._paint_timer.start()

    def _on_tab(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.calibration:
            self.calibration.set_recent_available(len(self.history.scores))

    def _paint(self) -> None:
        result = self._latest
        if result is None:
            return
        if result is not self._shown:
            self._shown = result
            if self._waiting:
                self._waiting = False
                self.frame_view.show_banner("")
            pending = self._pending_inspected
            if pending is not None and result.model_hash == pending[0]:
                self._pending_inspected = None
                self.frame_view.set_inspected(pending[1])
            frame = result.frame
            self.frame_view.show_frame(frame.image, result.heatmap, caption=_frame_name(frame), frame_id=frame.frame_id)
        self._show_verdict()
        self.history.refresh()
        self.frame_painted.emit(result)

    def _show_verdict(self) -> None:
        result = self._shown
        if self.status.state in ("lost", "reconnecting"):
            # Frames captured before the loss may still arrive: no verdict until the source is back.
            self.verdict.set_verdict(None, detail=self.status.source_label.text().strip())
        elif result is None:
            self.verdict.set_verdict(None)
        else:
            self.verdict.set_verdict(result, f"{_frame_name(result.frame)}  ·  {result.latency_ms:.0f} ms",
                                     self.station.threshold)
        self.verdict.set_counts(*self.history.counts())

    def _on_overlay(self, result: Any, overlay: Any) -> None:
        self.verdict.set_last_reject(overlay, f"{_frame_name(result.frame)}  score "
                                              f"{self.verdict.relative(result.raw_score):.2f}")

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
        shown = self._shown
        if shown is not None and shown.model_hash != model.model_hash:
            # The frame on screen was decided (and mapped) by the previous model: its regions come
            # with the first frame this model decides.
            self._pending_inspected = (model.model_hash, inspected)
        else:
            self._pending_inspected = None
            self.frame_view.set_inspected(inspected)
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
        self._show_verdict()
        self.settings.threshold_override = self.station.operator_threshold

    def _on_source_opened(self, description: str) -> None:
        self._source = description
        self._resumed = 0
        self._frames_since_open = self.history.scores.size

    def _on_resumed(self, skipped: int) -> None:
        self._resumed = int(skipped)

    def _on_source_state(self, state: str, message: str) -> None:
        self.status.set_source_state(state, message, self._source)
        if state in ("lost", "reconnecting"):
            # Never leave an old verdict up while no part is being inspected.
            self._show_verdict()
            self.frame_view.show_banner((message or "source lost").upper())
        else:
            self.frame_view.show_banner("")

    def _on_run_state(self, state: str) -> None:
        self._run_state = state
        resumed = self._resumed
        if state == "finished" and resumed and self.history.scores.size == self._frames_since_open:
            # A folder this model already decided: say so rather than leave an empty view.
            self.frame_view.show_banner(f"NOTHING NEW: {resumed} FILES ALREADY INSPECTED BY THIS MODEL", "info")
            self._waiting = False
            self.status.show_message(f"{self._source}: all {resumed} files were already decided by this model "
                                     "(inspector results lists them); add files, or review them in Batch review",
                                     30000)
        elif state == "running" and self.history.scores.size == self._frames_since_open and self._shown is None:
            # A hot folder or camera with nothing yet: say so instead of an empty view.
            self.frame_view.show_banner("WAITING FOR THE FIRST FRAME", "info")
            self._waiting = True
        running = state == "running"
        self.run_action.setText("Pause" if running else "Start")
        self.run_action.setIcon(pause_icon() if running else play_icon())

    # -- life ----------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Persist the settings and stop every worker thread."""
        self.operator.flush()
        self.audit.flush_threshold()
        self._paint_timer.stop()
        self._status_timer.stop()
        self.settings.window_geometry = saved_geometry(self)
        self.settings.overlay_opacity = self.operator.opacity_slider.value() / 100.0
        self.settings.segmentation_mode = self.operator.mode_combo.currentData()
        if self._save_settings is not None:
            remember_batch_folder(self.view_state, self.batch.folder.path)
            try:
                self._save_settings(self.settings)
                save_view_state(self.view_state)
            except OSError as exc:
                logger.warning("cannot save settings: %s", exc)
        self.hide()  # waiting for the workers to finish their frame must not look like a frozen window
        self.station.shutdown()
        super().closeEvent(event)
