"""What the line receives: the decision message, the station status, the MQTT address. No Qt.

A decision message is one JSON object per decided frame (see README, "Connecting to
the line"): its ``uid`` is the decision's unique id in the results database, so a
consumer drops the duplicates that at-least-once delivery may bring.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from inspector.core.records import InspectionResult

MESSAGE_VERSION = 1
DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
DEFAULT_PREFIX = "inspector"
PASSWORD_ENV = "INSPECTOR_MQTT_PASSWORD"
"""The broker password, when the URL names a user and no password (keeps it out of process lists and logs)."""
TLS_PARAMETERS = ("ca", "cert", "key")
"""Query parameters of an ``mqtts://`` URL: CA bundle, client certificate, client key (PEM files)."""


@dataclass(frozen=True)
class MqttAddress:
    """Where to publish: ``mqtt://host:port/prefix`` or ``mqtts://host:port/prefix?ca=FILE``.

    Attributes:
        host, port: The broker.
        prefix: Topic prefix (``inspector`` when the URL has no path).
        username, password: From ``mqtt://user[:password]@host``; the password, when the URL has
            none, from the environment variable :data:`PASSWORD_ENV`. Never printed (not in the
            ``repr``, not in :meth:`describe`).
        tls: ``mqtts://``: TLS with certificate and host name verification.
        ca_file: PEM CA bundle that signed the broker's certificate (``None``: the system's CAs).
        cert_file, key_file: Client certificate and key, for brokers that require one.
    """

    host: str
    port: int = DEFAULT_PORT
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = field(default=None, repr=False, compare=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def topic(self, station: str, leaf: str) -> str:
        """``<prefix>/<station>/<leaf>``."""
        return f"{self.prefix}/{station}/{leaf}"

    def describe(self) -> str:
        """The address for logs and messages: scheme, user, host, port, prefix; never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}/{self.prefix}"


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for error messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc}"))


def parse_mqtt_url(url: str, environ: Mapping[str, str] | None = None) -> MqttAddress:
    """Parse ``mqtt[s]://[user[:password]@]host[:port][/prefix][?ca=FILE&cert=FILE&key=FILE]``.

    ``mqtts`` is MQTT over TLS (default port 8883): the broker's certificate is verified
    against ``ca`` (else the system's CAs) and its host name; ``cert`` and ``key`` give a
    client certificate. A user without a password in the URL takes the password from
    ``INSPECTOR_MQTT_PASSWORD`` in ``environ`` (default: the process environment).

    Raises:
        ValueError: for another scheme, no host, a prefix with MQTT wildcards, an unknown or
            repeated query parameter, TLS files with plain ``mqtt://`` or files that cannot be read.
            The message never contains the password.
    """
    shown = redact_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"--mqtt {shown!r}: expected mqtt://host[:port][/prefix] or mqtts://host[:port][/prefix]")
    tls = parts.scheme == "mqtts"
    if not parts.hostname:
        raise ValueError(f"--mqtt {shown!r}: no broker host")
    prefix = parts.path.strip("/") or DEFAULT_PREFIX
    if "#" in url or "+" in prefix or "//" in prefix:
        raise ValueError(f"--mqtt {shown!r}: the topic prefix may not contain '+', '#' or empty levels")
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    except ValueError as exc:
        raise ValueError(f"--mqtt {shown!r}: {exc}") from exc
    files: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)) \
            if parts.query else ():
        if name not in TLS_PARAMETERS:
            raise ValueError(f"--mqtt {shown!r}: unknown parameter {name!r} (known: {', '.join(TLS_PARAMETERS)})")
        if name in files:
            raise ValueError(f"--mqtt {shown!r}: {name} given twice")
        if not tls:
            raise ValueError(f"--mqtt {shown!r}: {name}= is a TLS file: use mqtts://")
        path = os.path.abspath(os.path.expanduser(unquote(value)))
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise ValueError(f"--mqtt {shown!r}: the {name} file {path} cannot be read")
        files[name] = path
    if "key" in files and "cert" not in files:
        raise ValueError(f"--mqtt {shown!r}: key= needs cert= (the client certificate)")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and password is None:
        password = (os.environ if environ is None else environ).get(PASSWORD_ENV) or None
    return MqttAddress(parts.hostname, port, prefix, username, password, tls, files.get("ca"), files.get("cert"),
                       files.get("key"))


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
