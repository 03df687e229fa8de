"""``inspector score`` on the line: ``--recipe NAME`` and ``--mqtt URL``.

Every scored file becomes one decision: written to the results store (``--db``) with its
uid and the recipe, then handed to the same durable outbox and MQTT publisher as
``inspector serve`` (:class:`~inspector.line.mqtt_publisher.MqttPublisher`), with the
same message and the same uid. Submitting never waits for the network: a broker that is
down costs nothing while scoring; at the end the outbox is drained for at most
``--drain`` seconds and what is left waits on disk, delivered first by the next
``score --mqtt``, ``serve`` or window that uses the same outbox, or by ``inspector outbox
flush`` (the default outbox of
``--db FILE`` is ``FILE.mqtt-outbox``, serve's and the window's for that database).

A batch job is not a station: score publishes decisions only (no retained status, no
last will, no command subscription), on ``<prefix>/<station>/decision``.
"""

from __future__ import annotations

import os
import sys
import uuid
from types import SimpleNamespace
from typing import Any

SOURCE = "score"
"""The ``source`` of score's decisions (the same as its database rows)."""


def resolve_recipe(args) -> Any:
    """Apply ``--recipe``: its model, its threshold override (unless ``--threshold``); the positionals are all paths.

    Returns:
        The :class:`~inspector.storage.recipes.Recipe`, or ``None`` without ``--recipe``.

    Raises:
        RecipeError: an unknown or unreadable recipe (exit 2, before any model is loaded).
        ValueError: no image paths.
    """
    if not args.recipe:
        if not args.paths:
            raise ValueError("give the image files or folders to score after MODEL (or use --recipe NAME PATH...)")
        return None
    from inspector.storage.recipes import load_recipe

    recipe = load_recipe(args.recipe)
    args.paths = [args.model, *args.paths]
    args.model = recipe.model
    if args.threshold is None and recipe.threshold is not None:
        args.threshold = recipe.threshold
    return recipe


class ScoreLine:
    """Records and publishes score's decisions (see the module docstring).

    Args:
        url: The ``--mqtt`` URL, or ``None`` (no publishing).
        station: The station's name (topic level and message field).
        db: The ``--db`` target (for the default outbox), or ``None``.
        outbox: ``--outbox`` (default: ``DB.mqtt-outbox`` beside an SQLite database, else
            ``<data folder>/<station>.mqtt-outbox``).
        recipe: The recipe's name stored in every row and message, or ``None``.

    Raises:
        ValueError: a bad URL, TLS files that cannot be used, or paho-mqtt missing.
        OSError: the outbox is in use by another process.
    """

    def __init__(self, url: str | None, station: str | None, db: str | None, outbox: str | None,
                 recipe: str | None) -> None:
        from inspector.line.messages import default_station_name, safe_level

        self.recipe = recipe
        self.station = safe_level(station) if station else default_station_name()
        self.publisher: Any = None
        self.published = 0
        if not url:
            return
        import importlib.util

        from inspector.line.messages import parse_mqtt_url

        address = parse_mqtt_url(url)  # before anything else: a bad URL is exit 2 at once
        if importlib.util.find_spec("paho") is None or importlib.util.find_spec("paho.mqtt") is None:
            raise ValueError("--mqtt needs the line extra: pip install 'inspector[line]' (paho-mqtt, asyncua)")
        from inspector.line.mqtt_publisher import MqttPublisher

        self.outbox = outbox or default_outbox(db, self.station)
        self.publisher = MqttPublisher(address, self.station, self.outbox, status=False)
        self.address = address

    def start(self) -> None:
        """Connect in the background (decisions queue durably meanwhile)."""
        if self.publisher is not None:
            self.publisher.start()
            waiting = len(self.publisher.outbox)
            if waiting:
                print(f"inspector: mqtt: {waiting} decision(s) of an earlier run wait in the outbox "
                      f"{self.outbox}; they go first", file=sys.stderr)

    def take(self, store: Any, outcome: Any, model_hash: str) -> None:
        """Record one scored file (with ``--db``) and publish it (with ``--mqtt``), under one uid."""
        if outcome.skipped or (store is None and self.publisher is None):
            return
        from inspector.line.messages import decision_message, error_message
        from inspector.storage.stores import score_uid

        path = os.path.abspath(outcome.record["path"])
        uid = score_uid(model_hash, path, outcome.content_hash) or uuid.uuid4().hex
        row_id = None
        if "error" in outcome.record:
            if store is not None:
                row_id = store.record_error(SOURCE, outcome.record["error"], path, outcome.index, model_hash,
                                            uid=uid, content_hash=outcome.content_hash, recipe=self.recipe)
            if self.publisher is not None:
                failure = SimpleNamespace(source=SOURCE, path=path, message=outcome.record["error"],
                                          frame_id=outcome.index, timestamp=outcome.scored_at or None)
                message = error_message(failure, uid, model_hash, station=self.station, recipe=self.recipe)
                message["row_id"] = row_id
                self._submit(message)
            return
        result = _result(outcome, path, model_hash)
        if store is not None:
            row_id = store.record(result, uid=uid, content_hash=outcome.content_hash, recipe=self.recipe)
        if self.publisher is not None:
            message = decision_message(result, uid, outcome.record.get("heatmap"), station=self.station,
                                       recipe=self.recipe, row_id=row_id)
            message["regions"] = outcome.record.get("regions", [])
            self._submit(message)

    def _submit(self, message: dict) -> None:
        self.publisher.submit(message)
        self.published += 1

    def finish(self, drain_s: float) -> int:
        """Drain the outbox (at most ``drain_s`` s), disconnect, say how many wait; returns that number."""
        if self.publisher is None:
            return 0
        left = self.publisher.stop(drain_s)
        if not left and not self.published:
            return 0  # nothing scored (e.g. the model could not be loaded) and nothing waits
        where = self.address.describe()
        if left:
            print(f"inspector: mqtt: {self.published} decision(s) queued for {where}, "
                  f"{self.publisher.acknowledged} acknowledged; {left} wait in the outbox {self.outbox} "
                  "(delivered first by the next score --mqtt, serve or window using this outbox, or by "
                  "inspector outbox flush)", file=sys.stderr)
        else:
            print(f"inspector: mqtt: {self.published} decision(s) published to {where}, "
                  f"{self.publisher.acknowledged} acknowledged (earlier runs' included); none wait",
                  file=sys.stderr)
        return left


def default_outbox(db: str | None, station: str) -> str:
    """``DB.mqtt-outbox`` beside an SQLite database (serve's and the window's), else in the data folder."""
    if db and "://" not in db:
        return f"{os.path.abspath(db)}.mqtt-outbox"
    from inspector.core.paths import data_dir

    return str(data_dir() / f"{station}.mqtt-outbox")


def _result(outcome: Any, path: str, model_hash: str) -> Any:
    """The :class:`~inspector.core.records.InspectionResult` of a scored file (no pixels: none are stored)."""
    import numpy as np

    from inspector.core.records import Frame, InspectionResult

    frame = Frame(np.zeros((1, 1, 3), np.uint8), SOURCE, outcome.index, path=path, timestamp=outcome.scored_at)
    return InspectionResult(frame=frame, raw_score=outcome.raw_score, score=outcome.score,
                            threshold=outcome.threshold, anomalous=bool(outcome.record["anomalous"]),
                            model_hash=model_hash, latency_ms=outcome.latency_ms)
