"""Starting the station: the QApplication, settings, station, window, first model and source.

``run_gui`` is what ``inspector gui`` and a bare ``inspector`` call. Nothing
here loads torch: the model is loaded (or the demo prepared) on a worker.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication

from inspector.gui.main_window import MainWindow
from inspector.gui.theme import apply_theme
from inspector.workers.station import Station
from inspector.workers.store_holder import StoreHolder

from inspector.core.exit_codes import EXIT_NOT_RECORDED, EXIT_OK
from inspector.core.exit_codes import EXIT_USAGE as EXIT_FAILED
from inspector.workers.inspection_worker import REPEATED_ERRORS_MESSAGE

logger = logging.getLogger(__name__)

SOURCE_GIVE_UP_S = 10.0
"""With ``--quit-after``: a source lost (or never connected) this long without a frame ends the run (exit 2)."""


class Launcher(QObject):
    """Loads the first model, then opens (and, when asked, starts) the first source.

    With ``quit_after`` the window closes after that many decided frames, or
    when the source has no more; failures before that end the run with exit code 2:
    a model that cannot be loaded, a source that cannot be opened, a live source
    lost (or never connected) for :data:`SOURCE_GIVE_UP_S` seconds without a frame,
    a model that fails on every frame (the worker pauses after 5 in a row).
    After the window closed, :meth:`final_code` turns decisions still waiting in
    the journal into exit code 4.

    Args:
        window: The main window.
        source_spec: Source to open once the model is in (``None``: the demo's or the last one).
        autostart: Start inspecting as soon as model and source are ready.
        quit_after: Close after this many frames (``None``: run until the user quits).
        recipe: The :class:`~inspector.storage.recipes.Recipe` the station was opened with: once its
            model is in, its threshold override is applied and the choice is an audit entry ("recipe").
    """

    def __init__(self, window: MainWindow, source_spec: str | None, autostart: bool,
                 quit_after: int | None, recipe: Any = None) -> None:
        super().__init__(window)
        self.window = window
        self.recipe = recipe
        self._recipe_audited = False
        self.source_spec = source_spec
        self.autostart = autostart
        self.quit_after = quit_after
        self.frames = 0
        self.exit_code = EXIT_OK
        self._opened = False
        self._source_state = ""
        self._last_error = ""
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.setInterval(int(SOURCE_GIVE_UP_S * 1000))
        self._watchdog.timeout.connect(self._on_no_frames)
        station = window.station
        station.model_changed.connect(self._on_model)
        station.demo_ready.connect(self._on_demo)
        station.model_load_failed.connect(self._on_failure)
        if quit_after is not None:
            station.set_frame_limit(quit_after)  # exactly N frames reach the database
            station.inspection.result_ready.connect(self._on_result)
            station.inspection.run_state_changed.connect(self._on_run_state)
            station.inspection.error_occurred.connect(self._on_worker_error)
            station.inspection.source_opened.connect(self._on_source_opened)
            station.inspection.source_state_changed.connect(self._on_source_state)

    def _on_demo(self, spec: str) -> None:
        if self.source_spec is None:
            self.source_spec = spec
            if not self._opened:
                self._open()

    def _on_model(self, model: Any, path: str) -> None:
        if self.recipe is not None and not self._recipe_audited:
            self._recipe_audited = True
            if self.recipe.threshold is not None:
                self.window.station.set_threshold(self.recipe.threshold)
            self.window.audit.record("recipe", old=None, new=self.recipe.name, old_model_hash=None,
                                     new_model_hash=getattr(model, "model_hash", None),
                                     detail=f"model {self.recipe.model}")
        elif self.recipe is not None and path:
            self._follow_recipe(model, path)
        if not self._opened and self.source_spec:
            self._open()

    def _follow_recipe(self, model: Any, path: str) -> None:
        """The operator opened another model file: later decisions are not made under the recipe
        (its model again: they are), and each change is an audit entry ("recipe")."""
        station = self.window.station
        under = os.path.abspath(path) == os.path.abspath(self.recipe.model)
        name = self.recipe.name if under else None
        if name == station.recipe:
            return
        old, station.recipe = station.recipe, name
        self.window.audit.record("recipe", old=old, new=name, old_model_hash=None,
                                 new_model_hash=getattr(model, "model_hash", None),
                                 detail=f"model {path}" + ("" if under else ": not the recipe's model"))

    def follow_recipe(self, recipe: Any) -> None:
        """The line switched the station to ``recipe`` (already audited): follow it from now on."""
        self.recipe, self._recipe_audited = recipe, True

    def _open(self) -> None:
        self._opened = True
        self.window.open_source(self.source_spec, start=self.autostart)

    def _on_result(self, _result: Any) -> None:
        self.frames += 1
        self._watchdog.start()
        if self.frames == self.quit_after:
            self._finish(EXIT_OK)

    def _on_run_state(self, state: str) -> None:
        if state == "finished" and self.frames < (self.quit_after or 0):
            print(f"inspector: the source ended after {self.frames} of {self.quit_after} frames", file=sys.stderr)
            self._finish(EXIT_OK)

    def _on_source_opened(self, _description: str) -> None:
        self._watchdog.start()  # a bound method of this QObject: queued to the GUI thread

    def _on_source_state(self, state: str, message: str) -> None:
        self._source_state = message or state

    def _on_no_frames(self) -> None:
        if self._source_state and any(word in self._source_state.lower() for word in ("lost", "reconnect",
                                                                                     "connecting")):
            self._on_failure(f"{self.source_spec}: no frame for {SOURCE_GIVE_UP_S:g} s ({self._source_state}); "
                             "giving up")

    def _on_worker_error(self, message: str) -> None:
        if message.startswith("inspection failed"):
            self._last_error = message
        if message.startswith("cannot open source") or message == "no model loaded":
            self._on_failure(message)
        elif message == REPEATED_ERRORS_MESSAGE:
            self._on_failure(f"the model failed on every frame ({self._last_error or message}); giving up")

    def _on_failure(self, message: str) -> None:
        if self.quit_after is not None and self.exit_code == EXIT_OK:
            print(f"inspector: {message}", file=sys.stderr)
            self._finish(EXIT_FAILED)

    def final_code(self, code: int) -> int:
        """The exit code once the window closed: 4 when decisions still wait in the journal."""
        if self.quit_after is None:
            return code
        recorder = getattr(self.window.station, "recorder", None)
        state = recorder.state if recorder is not None else None
        if state is not None and not state.healthy:
            print(f"inspector: {state.waiting + state.in_memory} decisions could not be written to the results "
                  f"database {recorder.db_path} ({state.error or 'unavailable'}); they wait in the journal "
                  f"{state.journal_folder} and are written at the next start", file=sys.stderr)
            return code if code != EXIT_OK else EXIT_NOT_RECORDED
        return code

    def _finish(self, code: int) -> None:
        self._watchdog.stop()
        self.exit_code = code
        # Let the queued signals of this frame land first, then close (which stops the workers).
        QTimer.singleShot(0, self.window.close)


def run_gui(model_path: str | None = None, source_spec: str | None = None, quit_after: int | None = None,
            db_path: str | None = None, demo: bool = False,
            source_factory: Callable[[str], Any] | None = None, recipe: Any = None,
            line_link: Any = None, runtime: str = "auto") -> int:
    """Open the station and run until the window closes.

    Args:
        model_path: Model file; default the last one used, else the embedded demo.
        source_spec: ``camera:0``, ``video:PATH``, ``folder:PATH``, ``hotfolder:PATH`` or ``stream:URL``;
            given, it is opened and started at once.
        quit_after: Process this many frames, record them, close and return 0 (works offscreen);
            4 if some decisions could only be journalled, 2 if the run could not go on.
        db_path: Results database (default from settings, else the user data folder).
        demo: Open the embedded demo even if settings name a model.
        source_factory: Builds sources from specs (tests inject fake cameras here).
        recipe: A :class:`~inspector.storage.recipes.Recipe`: its model (unless ``model_path``), source
            (unless ``source_spec``), map mode and threshold override; its name is stored with every
            decision and the choice is an audit entry.
        line_link: Publishes decisions to the line (``inspector gui --mqtt``:
            :class:`~inspector.cli.gui_cmd.WindowPublisher`): ``attach(station)`` before the first
            model loads, ``attach_window(window, launcher)`` once they exist (it obeys the line's
            commands), ``close()`` once the window closed and the workers stopped (a bounded drain).
        runtime: What decides the frames of a ``.safetensors`` model: ``auto`` (its exported graph
            on the fastest engine when that passes parity at load, else torch), ``torch``, ``onnx``
            or ``openvino`` (``inspector gui --runtime``).

    Returns:
        The process exit code.
    """
    from inspector.storage.settings import load_settings, save_settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Inspector")
    apply_theme(app)
    settings, warnings = load_settings()
    for warning in warnings:
        logger.warning("%s", warning)
    if recipe is not None:
        model_path = model_path or os.path.abspath(recipe.model)
        source_spec = source_spec or recipe.source
    station = Station(StoreHolder(db_path or settings.results_db), source_factory=source_factory,
                      segmentation_mode=(recipe.maps if recipe is not None and recipe.maps
                                         else settings.segmentation_mode), runtime=runtime)
    station.recipe = recipe.name if recipe is not None else None  # before the first decision
    if line_link is not None:
        line_link.attach(station)
    window = MainWindow(station, settings, save_settings=save_settings)
    if recipe is not None and recipe.maps:  # the Maps choice shows the recipe's mode (the station has it)
        combo = window.operator.mode_combo
        combo.setCurrentIndex(max(0, combo.findData(recipe.maps)))
    model = None if demo else (model_path or _existing(settings.last_model))
    spec = source_spec or (settings.last_source if model else None)
    launcher = Launcher(window, spec, autostart=bool(source_spec) or quit_after is not None or not model,
                        quit_after=quit_after, recipe=recipe)
    if line_link is not None and hasattr(line_link, "attach_window"):
        line_link.attach_window(window, launcher)  # line commands: audit, source bar, recipe followed
    window.show()
    for warning in warnings:
        window.status.show_message(warning, 15000)
    if model:
        station.load_model(model)
    else:
        station.prepare_demo()
    try:
        code = app.exec()
    finally:
        if line_link is not None:
            line_link.close()  # the workers have stopped: every decision is in the outbox
    return launcher.final_code(launcher.exit_code if code == 0 else code)


def _existing(path: str | None) -> str | None:
    return path if path and os.path.isfile(path) else None
