"""Commands from the line to a station with a window: trigger, start, stop, switch recipe (QtCore only).

MQTT commands arrive on paho's network thread. :meth:`StationCommands.request` is the
only method called there: it checks the command (reading a recipe's small JSON file
from the config folder), emits a queued signal and returns at once, so paho's thread
never touches a QObject of the station and the GUI thread never waits for the
network. The slot runs on the thread this object lives on (the GUI thread) and drives
the :class:`~inspector.workers.station.Station` through its ordinary methods, which
are queued signals to the workers in turn.

- ``trigger``: inspect one frame when the station is not free-running (a trigger while
  a triggered frame is in hand waits for it, as in ``inspector serve``);
- ``start`` / ``stop``: free-run / pause after the frame in hand;
- ``recipe`` (``{"command": "recipe", "name": "part-b"}``): pause, load the recipe's
  model on the model worker and, once it is in, apply its threshold override, map
  mode and source, store its name with every later decision, announce
  :attr:`StationCommands.recipe_switched` (the window records it in the audit trail,
  on the model worker) and resume if it was running.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

logger = logging.getLogger(__name__)

COMMANDS = ("trigger", "start", "stop", "recipe")


class StationCommands(QObject):
    """Carries out the line's commands on a station, on this object's thread (see the module docstring).

    Args:
        station: The :class:`~inspector.workers.station.Station`.
        parent: Qt parent.

    Signals:
        recipe_switched(old_name, recipe, old_model_hash, new_model_hash): after a switch, once the
            recipe's model is in (``old_name`` is ``None`` when no recipe was in use).
        command_done(text): a short account of each command, for the status bar and the log.
    """

    recipe_switched = Signal(object, object, str, str)
    command_done = Signal(str)
    _command = Signal(object)

    def __init__(self, station: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.station = station
        self._run_state = "idle"
        self._stepping = False
        self._queued_steps = 0
        self._pending: Any = None  # the recipe whose model is loading
        self._resume = False
        self._model_hash = ""
        self._closed = False
        self.source_spec: str | None = None
        """The source in use, as far as the line knows (a recipe with another one opens its own)."""
        self.open_source = station.open_source
        """How a recipe's source is opened (the window's ``open_source`` shows it in its source bar)."""
        self._command.connect(self._on_command)
        station.inspection.run_state_changed.connect(self._on_run_state)
        station.model_changed.connect(self._on_model)
        station.model_load_failed.connect(self._on_load_failed)

    # -- any thread ------------------------------------------------------------------------------

    def request(self, command: dict[str, Any]) -> str:
        """Queue ``command`` to this object's thread (thread-safe, never blocks); an error text when refused.

        A recipe is read here (a small local file), so that an unknown one is refused at once.
        """
        name = command.get("command")
        if self._closed:
            return "the station is closing"
        if name not in COMMANDS:
            logger.warning("line command %r ignored: not one of %s", name, ", ".join(COMMANDS))
            return f"unknown command {name!r}"
        if name == "recipe":
            from inspector.storage.recipes import RecipeError, load_recipe

            try:
                command = dict(command, recipe=load_recipe(str(command.get("name") or "")))
            except RecipeError as exc:
                logger.warning("line command recipe %r refused: %s", command.get("name"), exc)
                return str(exc)
        self._command.emit(command)
        return ""

    def close(self) -> None:
        """Refuse further commands (the window is closing)."""
        self._closed = True

    # -- this object's thread ------------------------------------------------------------------

    def _on_command(self, command: dict[str, Any]) -> None:
        if self._closed:
            return
        name = command["command"]
        if name == "trigger":
            self._trigger()
        elif name == "start":
            self.station.start()
            self.command_done.emit("line: start")
        elif name == "stop":
            self._queued_steps = 0
            self.station.pause()
            self.command_done.emit("line: stop")
        elif name == "recipe":
            self.switch_recipe(command["recipe"])

    def _trigger(self) -> None:
        if self.station.model is None:
            self.command_done.emit("line: trigger ignored (no model loaded yet)")
        elif self._run_state == "running" and not self._stepping:
            self.command_done.emit("line: trigger ignored (free-running)")
        elif self._stepping or self._pending is not None:
            self._queued_steps += 1  # after the frame in hand (or the recipe's model)
        else:
            self._stepping = True
            self.station.step()
            self.command_done.emit("line: trigger")

    def switch_recipe(self, recipe: Any) -> None:
        """Pause, load ``recipe``'s model; the rest follows when it is in (see the module docstring)."""
        self._resume = self._run_state == "running" or self._resume
        self._pending = recipe
        self.station.pause()
        self.command_done.emit(f"line: switching to recipe {recipe.name} ...")
        self.station.load_model(recipe.model)

    # -- the station's answers --------------------------------------------------------------------

    def _on_run_state(self, state: str) -> None:
        self._run_state = state
        if state != "running" and self._stepping:
            self._stepping = False
            self._next_step()

    def _next_step(self) -> None:
        if self._queued_steps and self._pending is None and not self._closed and self._run_state == "paused":
            self._queued_steps -= 1
            self._stepping = True
            self.station.step()

    def _on_model(self, model: Any, path: str) -> None:
        old_hash, self._model_hash = self._model_hash, getattr(model, "model_hash", "") or ""
        recipe, self._pending = self._pending, None
        if recipe is None:
            return
        old = self.station.recipe
        if recipe.threshold is not None:
            self.station.set_threshold(recipe.threshold)
        if recipe.maps:
            self.station.set_segmentation_mode(recipe.maps)
        self.station.recipe = recipe.name  # in every later decision row and message
        if recipe.source and recipe.source != self.source_spec:
            self.source_spec = recipe.source
            self.open_source(recipe.source)
        logger.info("recipe switched: %s -> %s (model %s)", old or "none", recipe.name, self._model_hash[:12])
        self.recipe_switched.emit(old, recipe, old_hash, self._model_hash)
        self.command_done.emit(f"line: recipe {recipe.name}")
        if self._resume:
            self._resume = False
            self.station.start()
        else:
            self._next_step()

    def _on_load_failed(self, message: str) -> None:
        recipe, self._pending = self._pending, None
        if recipe is not None:
            logger.error("recipe %s: its model could not be loaded (%s); the station keeps %s", recipe.name, message,
                         self.station.recipe or "its model")
            self.command_done.emit(f"line: recipe {recipe.name} refused: {message}")
            if self._resume:
                self._resume = False
                self.station.start()
