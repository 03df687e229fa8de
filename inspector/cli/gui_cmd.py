"""``inspector gui``: the station window (also what ``inspector`` alone opens).

With ``--mqtt URL`` (or the ``mqtt_url`` setting) the window publishes every decision as
``inspector serve`` does: :class:`WindowPublisher` holds the same
:class:`~inspector.line.mqtt_publisher.MqttPublisher` with its durable outbox, fed by the
same inspection-thread listeners, and drains it (bounded) when the window has closed. It
also obeys ``<prefix>/<station>/command`` as serve does (trigger, start, stop, recipe):
commands arrive on paho's thread and reach the GUI thread as a queued Qt signal
(:class:`~inspector.workers.station_commands.StationCommands`); a recipe switch is an
audit entry written on the model worker. It lives here, not in :mod:`inspector.gui`,
because the window and the line packages are independent layers (pyproject's
import-linter contracts): the command line joins them.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from inspector.cli.sign_cmd import add_trusted_key

HELP = "open the inspection station (default: the built-in demo)"

logger = logging.getLogger(__name__)

DRAIN_S = 5.0
"""How long a closing window waits for the broker to acknowledge what is still in the outbox."""


def add_arguments(parser) -> None:
    """Arguments of ``inspector gui``."""
    from inspector.cli.common import add_runtime
    from inspector.sources.registry import spec_examples

    parser.add_argument("--model", metavar="MODEL", help="model file (default: the last one, else the demo)")
    parser.add_argument("--source", metavar="SPEC",
                        help=spec_examples())
    parser.add_argument("--quit-after", type=int, metavar="N",
                        help="process N frames, record them in the results database, then exit: 0, or 2 when the "
                             "source gives no frames or the model fails, 4 when decisions wait in the journal")
    parser.add_argument("--db", metavar="PATH|URL",
                        help="results database: an SQLite file or postgresql://USER@HOST[:PORT]/DB "
                             "(default: an SQLite file in the user data folder)")
    add_runtime(parser)
    parser.add_argument("--demo", action="store_true", help="open the built-in demo even if settings name a model")
    parser.add_argument("--recipe", metavar="NAME",
                        help="open this recipe (inspector recipe list): its model, threshold override, source and "
                             "map mode; every decision records the recipe, and the audit trail the choice")
    parser.add_argument("--mqtt", metavar="URL",
                        help="publish every decision to this broker and obey its PREFIX/STATION/command topic "
                             "(trigger, start, stop, recipe), mqtt[s]://[user@]host[:port][/prefix][?ca=FILE&"
                             "cert=FILE&key=FILE] (password: INSPECTOR_MQTT_PASSWORD; default: the mqtt_url "
                             "setting; as inspector serve --mqtt, with its durable outbox)")
    parser.add_argument("--station", metavar="NAME",
                        help="the station's name in MQTT topics and messages (default: the station_name "
                             "setting, else the host name)")
    add_trusted_key(parser)


def run(args) -> int:
    """Start the Qt application (imported here so that other commands never load Qt)."""
    if args.quit_after is not None and args.quit_after < 1:
        raise ValueError("--quit-after needs a positive number of frames")
    from inspector.storage.settings import absolute_path

    # Absolute before anything remembers it: settings keep it for starts from other folders.
    model_path = absolute_path(args.model) if args.model else None
    if args.trusted_key:
        from inspector.storage.signing import TRUSTED_KEYS_ENV, trust_policy

        trust_policy(args.trusted_key)  # unreadable key files: an error now, not a failed load later
        # The model worker reads the policy where it loads (settings + environment), on its own thread.
        named = [absolute_path(p) for p in args.trusted_key]
        os.environ[TRUSTED_KEYS_ENV] = os.pathsep.join(
            [p for p in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if p] + named)
    recipe = None
    if args.recipe:
        from inspector.storage.recipes import load_recipe

        if args.demo:
            raise ValueError("--recipe names a model: it cannot be combined with --demo")
        recipe = load_recipe(args.recipe)  # unknown: a RecipeError naming the known ones (exit 2)
    link = _window_publisher(args)
    from inspector.gui.app import run_gui

    return run_gui(model_path=model_path, source_spec=args.source, quit_after=args.quit_after,
                   db_path=args.db, demo=args.demo, recipe=recipe, line_link=link, runtime=args.runtime)


def _window_publisher(args) -> WindowPublisher | None:
    """The MQTT link of ``--mqtt`` or the settings, checked before the window opens (``None``: no MQTT)."""
    from inspector.storage.settings import load_settings

    settings, _ = load_settings()  # warnings: the window shows them
    url = args.mqtt or settings.mqtt_url
    if not url:
        if args.station:
            raise ValueError("--station names the station in MQTT messages: give --mqtt URL too "
                             "(or the mqtt_url setting)")
        return None
    import importlib.util

    if importlib.util.find_spec("paho") is None or importlib.util.find_spec("paho.mqtt") is None:
        raise ValueError("--mqtt needs the line extra: pip install 'inspector[line]' (paho-mqtt, asyncua)")
    from inspector.line.messages import default_station_name, parse_mqtt_url, safe_level

    address = parse_mqtt_url(url)  # a bad URL: ValueError, exit 2
    name = args.station or settings.station_name
    station = safe_level(name) if name else default_station_name()
    db = args.db or settings.results_db
    if db and "://" in db:  # a PostgreSQL store: the outbox is local
        from inspector.core.paths import data_dir

        outbox = str(data_dir() / f"{station}.mqtt-outbox")
    else:
        from inspector.storage.results_db import default_db_path

        outbox = f"{os.path.abspath(db or default_db_path())}.mqtt-outbox"
    return WindowPublisher(address, station, outbox)


class WindowPublisher:
    """Publishes the window's decisions over MQTT and obeys the line's commands, as ``inspector serve`` does.

    :meth:`attach` registers listeners on the station's inspection worker (called on its
    thread after each recorded decision, with the database uid): each decision, ERROR rows
    included, goes durably into the outbox and is sent at QoS 1; the retained status follows
    the run state. Commands on ``<prefix>/<station>/command`` go through
    :class:`~inspector.workers.station_commands.StationCommands` (paho's thread only emits a
    queued signal); :meth:`attach_window` lets a recipe switch be audited by the window and
    its source show in the source bar. :meth:`close` (after the window closed and the workers
    stopped) drains the outbox for at most ``drain_s`` seconds; what is left is delivered at
    the next start.

    Args:
        address: The parsed ``mqtt://`` URL.
        station: The station's topic level.
        outbox: The outbox folder (``<db>.mqtt-outbox``, as serve's).
    """

    def __init__(self, address: Any, station: str, outbox: str) -> None:
        from inspector.line.mqtt_publisher import MqttPublisher

        self.station_name = station
        self.commands: Any = None  # StationCommands, made in attach() on the GUI thread
        self.publisher = MqttPublisher(address, station, outbox, on_command=self._on_line_command)
        self._station: Any = None
        self._window: Any = None
        self._launcher: Any = None
        self._counts = {"OK": 0, "NG": 0}
        self._lock = threading.Lock()
        self._model_hash = ""
        self._state = "idle"
        self._closed = False

    def attach(self, station: Any) -> None:
        """Start publishing for ``station`` (a :class:`~inspector.workers.station.Station`) and obeying commands."""
        from inspector.workers.station_commands import StationCommands

        self._station = station
        # Before the window's own slots: a switched recipe is in place when the window sees the new model.
        self.commands = StationCommands(station, parent=station)
        self.commands.recipe_switched.connect(self._on_recipe_switched)
        self.commands.command_done.connect(self._on_command_done)
        worker = station.inspection
        worker.add_result_listener(self._on_result)
        worker.add_failure_listener(self._on_failure)
        worker.run_state_changed.connect(self._on_run_state)
        station.model_changed.connect(self._on_model)
        self.publisher.start()
        self._publish_status()

    def attach_window(self, window: Any, launcher: Any) -> None:
        """The window and its launcher (``run_gui``): audit entries, the source bar, the followed recipe."""
        self._window, self._launcher = window, launcher
        if self.commands is not None:
            self.commands.source_spec = getattr(launcher, "source_spec", None)
            self.commands.open_source = window.open_source  # a recipe's source shows in the source bar

    def _on_line_command(self, command: dict) -> None:
        """paho's thread: hand over to the GUI thread (a queued signal), never wait."""
        commands = self.commands
        if commands is None or self._closed:
            logger.warning("mqtt: command %r ignored: the window is not ready or closing", command.get("command"))
            return
        commands.request(command)

    def _on_command_done(self, text: str) -> None:
        logger.info("%s", text)
        if self._window is not None:
            self._window.status.show_message(text, 5000)

    def _on_recipe_switched(self, old: str | None, recipe: Any, old_hash: str, new_hash: str) -> None:
        """GUI thread, once the recipe's model is in: audit (on the model worker), follow, show, publish."""
        window = self._window
        if window is not None:
            window.audit.record("recipe", old=old, new=recipe.name, old_model_hash=old_hash or None,
                                new_model_hash=new_hash, detail=f"model {recipe.model} (line command)")
            if recipe.maps:  # the Maps choice shows the recipe's mode (the station has it)
                combo = window.operator.mode_combo
                combo.setCurrentIndex(max(0, combo.findData(recipe.maps)))
        else:
            logger.warning("recipe switch to %s not audited: no window attached", recipe.name)
        if self._launcher is not None:
            self._launcher.follow_recipe(recipe)
        self._publish_status()

    def _on_result(self, result: Any, row_id: int | None, image_path: str | None, uid: str | None) -> None:
        from inspector.line.messages import decision_message

        with self._lock:
            self._counts[result.verdict] = self._counts.get(result.verdict, 0) + 1
        self.publisher.submit(decision_message(result, uid, image_path, station=self.station_name,
                                               recipe=self._station.recipe, row_id=row_id))

    def _on_failure(self, failure: Any, model_hash: str | None, uid: str | None) -> None:
        from inspector.line.messages import error_message

        self.publisher.submit(error_message(failure, uid, model_hash, station=self.station_name,
                                            recipe=self._station.recipe))

    def _on_run_state(self, state: str) -> None:
        self._state = state
        self._publish_status()

    def _on_model(self, model: Any, _path: str) -> None:
        self._model_hash = getattr(model, "model_hash", "") or ""
        self._publish_status()

    def _publish_status(self) -> None:
        if self._closed:
            return
        with self._lock:
            ok, ng = self._counts["OK"], self._counts["NG"]
        self.publisher.set_status(self._state, recipe=self._station.recipe if self._station else None,
                                  model_hash=self._model_hash, count_ok=ok, count_ng=ng)

    def close(self, drain_s: float = DRAIN_S) -> int:
        """Drain (at most ``drain_s`` seconds), publish ``stopped``, disconnect; how many wait in the outbox."""
        if self._closed:
            return 0
        if self.commands is not None:
            self.commands.close()
        self._publish_status()
        self._closed = True
        left = self.publisher.stop(drain_s)
        logger.info("mqtt: %d published, %d acknowledged, %d left in the outbox", self.publisher.published,
                    self.publisher.acknowledged, left)
        return left
