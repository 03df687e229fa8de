"""``inspector serve``: the station without a window (QtCore only).

:class:`LineService` runs the same :class:`~inspector.workers.station.Station`,
workers, results database and journal as the window, in a QCoreApplication, and
adds the line's faces: MQTT publishing (:mod:`inspector.line.mqtt_publisher`),
an OPC UA server (:mod:`inspector.line.opcua_server`), recipes and triggers.
Every decision reaches the publisher and the OPC UA variables through a result
listener on the inspection thread (a few microseconds: the network is on their
own threads). Commands from MQTT and OPC UA arrive on their threads and become a
queued signal to this object, on the main thread.

SIGTERM and SIGINT end the run cleanly: the frame in hand is finished, the
workers stop, the journal is flushed, the outbox drained for a few seconds (what
is left is delivered at the next start), exit 0. Exit codes with ``--quit-after``
are the window's: 0, 2 when the run could not go on, 4 when decisions wait in the
journal.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from inspector.core.exit_codes import EXIT_NOT_RECORDED, EXIT_OK, EXIT_USAGE
from inspector.line.messages import (
    decision_message,
    default_station_name,
    error_message,
    parse_mqtt_url,
    safe_level,
)
from inspector.workers.inspection_worker import REPEATED_ERRORS_MESSAGE
from inspector.workers.station import Station
from inspector.workers.store_holder import StoreHolder

logger = logging.getLogger("inspector.serve")

TRIGGER_MODES = ("free", "opcua", "mqtt", "hotfolder")
SOURCE_GIVE_UP_S = 10.0


@dataclass
class ServeOptions:
    """What ``inspector serve`` was asked to do (see its ``--help``)."""

    model: str | None = None
    recipe: str | None = None
    source: str | None = None
    db: str | None = None
    mqtt: str | None = None
    opcua: str | None = None
    opcua_allow_remote: bool = False
    opcua_security: str = "none"
    opcua_cert: str | None = None
    opcua_key: str | None = None
    opcua_trust: str | None = None
    quit_after: int | None = None
    trigger: str = "free"
    station: str | None = None
    outbox: str | None = None
    maps: str | None = None
    drain_s: float = 5.0
    runtime: str = "auto"


class LineService(QObject):
    """The headless station and its line connections (see the module docstring).

    Args:
        options: What to run.
        source_factory: Builds sources from specs (tests may inject one).
    """

    _command = Signal(object)

    def __init__(self, options: ServeOptions, source_factory: Callable[[str], Any] | None = None) -> None:
        super().__init__()
        from inspector.storage.results_db import default_db_path
        from inspector.storage.settings import load_settings

        self.options = options
        settings, warnings = load_settings()
        for warning in warnings:
            logger.warning("%s", warning)
        self.recipe = None
        model, source, maps = options.model, options.source, options.maps
        if options.recipe:
            from inspector.storage.recipes import load_recipe

            self.recipe = load_recipe(options.recipe)
            model = model or self.recipe.model
            source = source or self.recipe.source
            maps = maps or self.recipe.maps
        if not model:
            raise ValueError("serve needs --model or --recipe")
        if not source:
            raise ValueError("serve needs --source (or a recipe that names one)")
        if options.trigger not in TRIGGER_MODES:
            raise ValueError(f"--trigger {options.trigger!r}: one of {', '.join(TRIGGER_MODES)}")
        if options.trigger == "hotfolder" and not source.startswith("hotfolder:"):
            raise ValueError("--trigger hotfolder needs a hotfolder:PATH source")
        if options.trigger == "mqtt" and not options.mqtt:
            raise ValueError("--trigger mqtt needs --mqtt")
        if options.trigger == "opcua" and not options.opcua:
            raise ValueError("--trigger opcua needs --opcua")
        self.model_path, self.source_spec = os.path.abspath(model), source
        self.station_name = safe_level(options.station) if options.station else default_station_name()
        db_path = options.db or settings.results_db or str(default_db_path())
        self.db_path = db_path
        self.station = Station(StoreHolder(db_path), source_factory=source_factory,
                               segmentation_mode=maps or settings.segmentation_mode, runtime=options.runtime)
        self.station.recipe = self.recipe.name if self.recipe is not None else None
        self.exit_code = EXIT_OK
        self.frames = 0
        self.counts = {"OK": 0, "NG": 0}
        self._counts_lock = threading.Lock()
        self._recipe_of_hash: dict[str, str | None] = {}
        self._model_hash = ""
        self._source_opened = False
        self._pending_recipe = None
        self._resume_after_switch = False
        self._run_state = "idle"
        self._source_state = ""
        self._recording_ok = True
        self._finishing = False
        self._stopped = False
        self._stepping = False
        self._queued_steps = 0
        self._drift: Any = None
        self._drifting = False
        self.latencies_ms: list[float] = []
        self._trigger_times: list[float] = []
        self._trigger_lock = threading.Lock()
        self.publisher = self._make_publisher(db_path) if options.mqtt else None
        self.opcua = None
        if options.opcua:
            from inspector.line.opcua_server import OpcUaServer, check_endpoint, check_security

            _require("asyncua", "--opcua")
            security = check_security(options.opcua_security, options.opcua_cert, options.opcua_key,
                                      options.opcua_trust)
            self.opcua = OpcUaServer(check_endpoint(options.opcua, options.opcua_allow_remote), self._request,
                                     security=security)
        elif options.opcua_cert or options.opcua_key or options.opcua_trust or \
                (options.opcua_security or "none") != "none":
            raise ValueError("--opcua-security, --opcua-cert, --opcua-key and --opcua-trust go with --opcua")
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.setInterval(int(SOURCE_GIVE_UP_S * 1000))
        self._watchdog.timeout.connect(self._on_no_frames)
        self._wire()

    def _make_publisher(self, db_path: str) -> Any:
        _require("paho.mqtt", "--mqtt")
        from inspector.line.mqtt_publisher import MqttPublisher

        address = parse_mqtt_url(self.options.mqtt)
        outbox = self.options.outbox or f"{os.path.abspath(db_path)}.mqtt-outbox"
        return MqttPublisher(address, self.station_name, outbox, on_command=self._request)

    def _wire(self) -> None:
        station, worker = self.station, self.station.inspection
        self._command.connect(self._on_command)
        station.model_changed.connect(self._on_model)
        station.model_load_failed.connect(lambda message: self._fail(message))
        station.message.connect(lambda text: logger.info("%s", text))
        worker.add_result_listener(self._on_result)
        worker.add_failure_listener(self._on_failure)
        worker.result_ready.connect(self._on_result_main)
        worker.run_state_changed.connect(self._on_run_state)
        worker.error_occurred.connect(self._on_worker_error)
        worker.source_opened.connect(self._on_source_opened)
        worker.source_state_changed.connect(self._on_source_state)
        worker.recording_state_changed.connect(self._on_recording)
        if self.options.quit_after is not None:
            station.set_frame_limit(self.options.quit_after)

    # -- start and stop ----------------------------------------------------------------

    def start(self) -> None:
        """Start the line connections and load the model (the source opens once it is in)."""
        if self.opcua is not None:
            self.opcua.start()
            self.opcua.set_values(Recipe=self._recipe_name() or "", RunState="idle")
        if self.publisher is not None:
            self.publisher.start()
            self._publish_status()
        logger.info("station %s: model %s, source %s, trigger %s, results %s", self.station_name, self.model_path,
                    self.source_spec, self.options.trigger, self.db_path)
        self.station.load_model(self.model_path)

    def request_stop(self, reason: str = "stopping") -> None:
        """End the run cleanly (exit code stays what it was: 0 unless a failure came first)."""
        logger.info("%s: finishing the frame in hand, flushing, exiting", reason)
        self._finish(self.exit_code)

    def _finish(self, code: int) -> None:
        if self._finishing:
            return
        self._finishing = True
        self._watchdog.stop()
        self.exit_code = code
        self.station.pause()
        QTimer.singleShot(0, self._shutdown)

    def _shutdown(self) -> None:
        """Stop the workers (the frame in hand finishes, the journal is flushed), drain, quit."""
        self.station.shutdown()
        self._stopped = True
        recorder = self.station.recorder
        state = recorder.state if recorder is not None else None
        if state is not None and not state.healthy:
            logger.error("%d decisions could not be written to %s (%s); they wait in the journal %s",
                         state.waiting + state.in_memory, self.db_path, state.error or "unavailable",
                         state.journal_folder)
            if self.options.quit_after is not None and self.exit_code == EXIT_OK:
                self.exit_code = EXIT_NOT_RECORDED
        if self.publisher is not None:
            self._run_state = "stopped"
            left = self.publisher.stop(self.options.drain_s)
            logger.info("mqtt: %d published, %d acknowledged, %d left in the outbox", self.publisher.published,
                        self.publisher.acknowledged, left)
        if self.opcua is not None:
            self.opcua.stop()
        if self.latencies_ms:
            ordered = sorted(self.latencies_ms)
            logger.info("trigger to verdict: median %.1f ms, max %.1f ms over %d triggers",
                        ordered[len(ordered) // 2], ordered[-1], len(ordered))
        logger.info("%d frames decided (%d OK, %d NG)", self.frames, self.counts["OK"], self.counts["NG"])
        QCoreApplication.quit()

    def _fail(self, message: str) -> None:
        logger.error("%s", message)
        if self.exit_code == EXIT_OK:
            self._finish(EXIT_USAGE)

    # -- the station's answers (main thread) -----------------------------------------------

    def _on_model(self, model: Any, path: str) -> None:
        self._model_hash = model.model_hash
        recipe = self._pending_recipe or self.recipe
        self._pending_recipe = None
        if recipe is not None and recipe.threshold is not None:
            self.station.set_threshold(recipe.threshold)
        if recipe is not None and recipe is not self.recipe:
            self._audit_recipe(self.recipe, recipe, model.model_hash)
            self.recipe = recipe
            if recipe.maps:
                self.station.set_segmentation_mode(recipe.maps)
        self._recipe_of_hash[model.model_hash] = recipe.name if recipe is not None else None
        self.station.recipe = recipe.name if recipe is not None else None  # stored in every later row
        self._reset_drift(model)
        if self.opcua is not None:
            self.opcua.set_values(ModelHash=model.model_hash, Recipe=self._recipe_name() or "",
                                  Threshold=float(self.station.threshold))
        if not self._source_opened:
            self._source_opened = True
            self.station.open_source(self.source_spec)
            if self.options.trigger in ("free", "hotfolder"):
                self.station.start()
        elif recipe is not None and recipe.source and recipe.source != self.source_spec:
            self.source_spec = recipe.source
            self.station.open_source(recipe.source)
            if self._resume_after_switch:
                self.station.start()
        elif self._resume_after_switch:
            self.station.start()
        self._resume_after_switch = False
        self._publish_status()

    def _reset_drift(self, model: Any) -> None:
        from inspector.calibration.drift import DriftMonitor

        good = getattr(getattr(model, "calibration", None), "good_scores", None)
        self._drift = DriftMonitor(good, self.station.threshold) if good is not None and len(good) else None
        self._drifting = False

    def _audit_recipe(self, old: Any, new: Any, new_hash: str) -> None:
        old_hash = self._model_hash_before_switch
        try:
            self.station.store().record_audit("recipe", old.name if old else None, new.name, old_hash, new_hash,
                                              f"model {new.model}")
        except Exception as exc:  # noqa: BLE001 - the switch stands; the log says the audit failed
            logger.error("the recipe switch to %s could not be recorded in the audit trail: %s", new.name, exc)
        logger.info("recipe switched: %s -> %s", old.name if old else "none", new.name)

    def _on_result_main(self, result: Any) -> None:
        self.frames += 1
        self._watch_drift(float(result.raw_score))
        self._watchdog.start()
        if self.options.quit_after is not None and self.frames >= self.options.quit_after:
            self._finish(self.exit_code)

    def _watch_drift(self, raw_score: float) -> None:
        """The window's drift test on the recent scores; a change is published (status, OPC UA Drifting)."""
        if self._drift is None:
            return
        report = self._drift.add(raw_score)
        if report is None or bool(report.drift) == self._drifting:
            return
        self._drifting = bool(report.drift)
        if self._drifting:
            logger.warning("drift: %s", report.message)
        if self.opcua is not None:
            self.opcua.set_values(Drifting=self._drifting)
        self._publish_status()

    def _on_run_state(self, state: str) -> None:
        self._run_state = state
        if state != "running" and self._stepping:
            self._stepping = False
            if self._queued_steps and state == "paused" and not self._finishing:
                self._queued_steps -= 1
                self._stepping = True
                self.station.step()
        if self.opcua is not None:
            self.opcua.set_values(RunState=state)
        self._publish_status()
        if state == "finished" and self.options.quit_after is not None and self.frames < self.options.quit_after:
            logger.warning("the source ended after %d of %d frames", self.frames, self.options.quit_after)
            self._finish(self.exit_code)

    def _on_source_opened(self, description: str) -> None:
        logger.info("source opened: %s", description)
        if self.options.quit_after is not None:
            self._watchdog.start()

    def _on_source_state(self, state: str, message: str) -> None:
        self._source_state = message or state
        if self.opcua is not None:
            self.opcua.set_values(SourceState=self._source_state)
        self._publish_status()

    def _on_recording(self, state: Any) -> None:
        self._recording_ok = bool(state.healthy)
        if not state.healthy:
            logger.warning("%s", state.describe())
        self._publish_status()

    def _on_no_frames(self) -> None:
        text = self._source_state.lower()
        if self.options.quit_after is not None and any(w in text for w in ("lost", "reconnect", "connecting")):
            self._fail(f"{self.source_spec}: no frame for {SOURCE_GIVE_UP_S:g} s ({self._source_state}); giving up")

    def _on_worker_error(self, message: str) -> None:
        logger.warning("%s", message)
        if message.startswith("cannot open source") or message == REPEATED_ERRORS_MESSAGE:
            self._fail(message)

    # -- commands (MQTT and OPC UA threads -> main thread) -------------------------------------

    def _request(self, command: dict[str, Any]) -> str:
        """Thread-safe: queue ``command`` to the main thread; an error text when refused at once."""
        name = command.get("command")
        if name == "trigger":
            if not self._model_hash or self._finishing:
                return "no model loaded yet" if not self._model_hash else "stopping"
            with self._trigger_lock:
                self._trigger_times.append(time.perf_counter())
        elif name == "recipe":
            from inspector.storage.recipes import RecipeError, load_recipe

            try:
                load_recipe(str(command.get("name") or ""))
            except RecipeError as exc:
                return str(exc)
        elif name not in ("start", "stop"):
            logger.warning("unknown command %r ignored", command)
            return f"unknown command {name!r}"
        self._command.emit(command)
        return ""

    def _on_command(self, command: dict[str, Any]) -> None:
        if self._finishing:
            return
        name = command.get("command")
        logger.info("command: %s", name if name != "recipe" else f"recipe {command.get('name')}")
        if name == "trigger":
            self._trigger_step()
        elif name == "start":
            self.station.start()
        elif name == "stop":
            self.station.pause()
        elif name == "recipe":
            self.switch_recipe(str(command.get("name")))

    def _trigger_step(self) -> None:
        """One more frame per trigger: a trigger while a frame is in hand waits for it (free-run: no step)."""
        if self._stepping:
            self._queued_steps += 1
        elif self._run_state != "running":
            self._stepping = True
            self.station.step()

    def switch_recipe(self, name: str) -> None:
        """Pause, load the recipe's model, apply its threshold and source, resume; recorded in the audit trail."""
        from inspector.storage.recipes import load_recipe

        recipe = load_recipe(name)
        self._resume_after_switch = self._run_state == "running"
        self._model_hash_before_switch = self._model_hash
        self.station.pause()
        self._pending_recipe = recipe
        self.station.load_model(recipe.model)

    _model_hash_before_switch = ""

    # -- every decision (inspection thread) -----------------------------------------------------

    def _on_result(self, result: Any, row_id: int | None, image_path: str | None, uid: str | None) -> None:
        recipe = self._recipe_of_hash.get(result.model_hash)
        with self._counts_lock:
            self.counts[result.verdict] = self.counts.get(result.verdict, 0) + 1
            ok, ng = self.counts["OK"], self.counts["NG"]
        with self._trigger_lock:
            asked = self._trigger_times.pop(0) if self._trigger_times else None
        if self.publisher is not None:
            self.publisher.submit(decision_message(result, uid, image_path, station=self.station_name,
                                                   recipe=recipe, row_id=row_id))
        if self.opcua is not None:
            self.opcua.publish_result({
                "LastVerdict": result.verdict, "LastScore": float(result.score),
                "LastRawScore": float(result.raw_score), "Threshold": float(result.threshold),
                "FrameId": int(result.frame.frame_id), "CountOK": ok, "CountNG": ng,
                "ModelHash": result.model_hash}, (result.verdict, float(result.score)))
        if asked is not None:
            self.latencies_ms.append((time.perf_counter() - asked) * 1000.0)

    def _on_failure(self, failure: Any, model_hash: str | None, uid: str | None) -> None:
        """An unreadable frame is an ERROR decision in the database: the line gets it too."""
        if self.publisher is not None:
            self.publisher.submit(error_message(failure, uid, model_hash, station=self.station_name,
                                                recipe=self._recipe_of_hash.get(model_hash or "")))

    # -- status ------------------------------------------------------------------------------------

    def _recipe_name(self) -> str | None:
        return self.recipe.name if self.recipe is not None else None

    def _publish_status(self) -> None:
        if self.publisher is None or self._stopped:
            return
        with self._counts_lock:
            ok, ng = self.counts["OK"], self.counts["NG"]
        self.publisher.set_status(self._run_state, source=self.source_spec, source_state=self._source_state,
                                  recording=self._recording_ok, drifting=self._drifting,
                                  recipe=self._recipe_name(),
                                  model_hash=self._model_hash, trigger=self.options.trigger,
                                  count_ok=ok, count_ng=ng)


def _require(module: str, option: str) -> None:
    """A clear message, not a traceback, when the line extra is not installed."""
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
        raise ValueError(f"{option} needs the line extra: pip install 'inspector[line]' (paho-mqtt, asyncua)")
