"""What the line receives: the decision message, the station status, the MQTT address. No Qt.

A decision message is one JSON object per decided frame (see README, "Connecting to
the line"): its ``uid`` is the decision's unique id in the results database, so a
consumer drops the duplicates that at-least-once delivery may bring.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from inspector.core.records import InspectionResult

MESSAGE_VERSION = 1
DEFAULT_PORT = 1883
DEFAULT_PREFIX = "inspector"


@dataclass(frozen=True)
class MqttAddress:
    """Where to publish: ``mqtt://host:port/prefix``.

    Attributes:
        host, port: The broker.
        prefix: Topic prefix (``inspector`` when the URL has no path).
        username, password: From ``mqtt://user:password@host``, if given.
    """

    host: str
    port: int = DEFAULT_PORT
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = None

    def topic(self, station: str, leaf: str) -> str:
        """``<prefix>/<station>/<leaf>``."""
        return f"{self.prefix}/{station}/{leaf}"


def parse_mqtt_url(url: str) -> MqttAddress:
    """Parse ``mqtt://[user[:password]@]host[:port][/prefix]``.

    Raises:
        ValueError: for another scheme, no host, or a prefix with MQTT wildcards.
    """
    parts = urlsplit(url)
    if parts.scheme != "mqtt":
        raise ValueError(f"--mqtt {url!r}: expected mqtt://host[:port][/prefix]")
    if not parts.hostname:
        raise ValueError(f"--mqtt {url!r}: no broker host")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if "#" in url or "+" in prefix or "//" in prefix or parts.query:
        raise ValueError(f"--mqtt {url!r}: the topic prefix may not contain '+', '#' or empty levels")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError(f"--mqtt {url!r}: {exc}") from exc
    return MqttAddress(parts.hostname, port, prefix, parts.username, parts.password)


def default_station_name() -> str:
    """The host name, made safe for a topic level."""
    return safe_level(socket.gethostname() or "station")


def safe_level(text: str) -> str:
    """``text`` usable as one MQTT topic level (no ``/``, ``+``, ``#``)."""
    cleaned = "".join("_" if c in "/+#" or c.isspace() else c for c in text).strip("_")
    return cleaned or "station"


def utc_now() -> str:
    """The current time as ISO 8601 UTC text with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decision_message(result: InspectionResult, uid: str | None, image_path: str | None, *, station: str,
                     recipe: str | None = None, row_id: int | None = None) -> dict[str, Any]:
    """The JSON-ready message for one decision.

    Args:
        result: The decision.
        uid: Its unique id in the results database (``None``: a fresh uuid is made).
        image_path: Where the NG frame was saved, if it was.
        station: The station's name.
        recipe: The recipe in use, if any.
        row_id: The database row, when the decision went straight into it.
    """
    frame = result.frame
    regions = [r.as_dict() for r in result.heatmap.regions] if result.heatmap is not None else []
    return {
        "v": MESSAGE_VERSION,
        "uid": uid or uuid.uuid4().hex,
        "station": station,
        "time": utc_now(),
        "frame_time": datetime.fromtimestamp(float(frame.timestamp), timezone.utc)
        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": frame.source,
        "frame_id": int(frame.frame_id),
        "path": frame.path,
        "verdict": result.verdict,
        "score": float(result.score),
        "raw_score": float(result.raw_score),
        "threshold": float(result.threshold),
        "model_hash": result.model_hash,
        "recipe": recipe,
        "latency_ms": round(float(result.latency_ms), 3),
        "regions": regions,
        "image_path": image_path,
        "row_id": row_id,
    }


def error_message(failure: Any, uid: str | None, model_hash: str | None, *, station: str,
                  recipe: str | None = None) -> dict[str, Any]:
    """The message for a frame that could not be inspected (verdict ``ERROR``, recorded as such).

    Args:
        failure: A :class:`~inspector.sources.base.FailedRead` (source, path, message, frame_id, timestamp).
        uid, model_hash, station, recipe: As for :func:`decision_message`.
    """
    frame_id = getattr(failure, "frame_id", None)
    stamp = getattr(failure, "timestamp", None)
    return {
        "v": MESSAGE_VERSION, "uid": uid or uuid.uuid4().hex, "station": station, "time": utc_now(),
        "frame_time": None if stamp is None else datetime.fromtimestamp(float(stamp), timezone.utc)
        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "source": failure.source, "frame_id": None if frame_id is None else int(frame_id), "path": failure.path,
        "verdict": "ERROR", "error": failure.message, "score": None, "raw_score": None, "threshold": None,
        "model_hash": model_hash, "recipe": recipe, "latency_ms": None, "regions": [], "image_path": None,
        "row_id": None,
    }


def encode(message: dict[str, Any]) -> str:
    """Compact JSON text of a message."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False, default=str)


def status_message(station: str, state: str, **fields: Any) -> dict[str, Any]:
    """The retained status: ``state`` (running, paused, idle, finished, stopped, offline) and details."""
    return {"v": MESSAGE_VERSION, "station": station, "state": state, "time": utc_now(), "unix": time.time(),
            **fields}
