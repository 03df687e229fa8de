"""Versioned, forgiving JSON settings.

A missing file gives the defaults; a broken file (not JSON, not UTF-8, not an
object) or one written by a newer Inspector gives the defaults (or the values
this version knows) and a warning, and is first copied aside
(``settings.json.broken-<UTC time>``, ``settings.json.v<N>-<UTC time>``) so that
saving never destroys it; :func:`save_settings` makes the same copy if the file
it replaces is not one it could have written, and refuses to replace it when the
copy fails. Unknown keys are dropped and invalid values replaced by their
defaults, each with a warning. Loading never raises. Saving is atomic. Model
paths are saved absolute (a relative path would name another file when the
station starts in another folder).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from inspector.core.durable import write_atomically
from inspector.core.paths import config_dir


SETTINGS_VERSION = 2
"""Version 2 adds ``mqtt_url`` and ``station_name`` (a version-1 file reads as it is; an
Inspector that only knows version 1 copies a version-2 file aside before replacing it)."""
SETTINGS_FILENAME = "settings.json"
SEGMENTATION_MODES = ("off", "fast", "gradient", "fast+gradient")
MAX_RECENT_MODELS = 10


@dataclass
class Settings:
    """What the application remembers between sessions.

    Attributes:
        version: Format version of the file.
        last_source: The last source spec, e.g. ``"camera:0"``.
        last_model: Path of the last model file loaded.
        threshold_override: The operator's raw threshold, or ``None`` to use the model's.
        overlay_opacity: Heatmap overlay opacity, 0 to 1.
        segmentation_mode: One of :data:`SEGMENTATION_MODES`.
        window_geometry: ``QWidget.saveGeometry()`` bytes, base64-encoded.
        recent_models: Model paths, most recent first.
        results_db: The results database path, or ``None`` for the default.
        trusted_keys: Public key files whose model signatures are trusted
            (:mod:`inspector.storage.signing`; relative paths are read from the settings folder).
        require_signed_models: Refuse model files without a valid signature by a trusted key.
        mqtt_url: ``mqtt[s]://[user[:password]@]host[:port][/prefix][?ca=&cert=&key=]`` (see
            :func:`inspector.line.messages.parse_mqtt_url`): the window publishes every
            decision there (as ``inspector serve --mqtt``), or ``None`` for no MQTT.
        station_name: The station's name in MQTT topics and messages (one topic level), or
            ``None`` for the host name.
        batch_folder: The batch review's last folder (absolute), or ``None``.
    """

    version: int = SETTINGS_VERSION
    last_source: str | None = None
    last_model: str | None = None
    threshold_override: float | None = None
    overlay_opacity: float = 0.5
    segmentation_mode: str = "fast"
    window_geometry: str | None = None
    recent_models: list[str] = field(default_factory=list)
    results_db: str | None = None
    trusted_keys: list[str] = field(default_factory=list)
    require_signed_models: bool = False
    mqtt_url: str | None = None
    station_name: str | None = None
    batch_folder: str | None = None

    def add_recent_model(self, path: str) -> None:
        """Put ``path`` (made absolute) first in :attr:`recent_models` (once), keeping at most 10."""
        path = absolute_path(path)
        self.recent_models = [path] + [p for p in self.recent_models if p != path]
        del self.recent_models[MAX_RECENT_MODELS:]


def absolute_path(path: str) -> str:
    """``path`` made absolute against the current folder (symbolic links kept, not resolved)."""
    return os.path.abspath(os.path.expanduser(path))


def default_settings_path() -> Path:
    """``$INSPECTOR_CONFIG_DIR/settings.json``, or the same file in the user config dir."""
    folder = config_dir()
    return Path(folder) / SETTINGS_FILENAME


# -- validators: return the clean value or raise ValueError with the reason -----


def _optional_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError("must be text or null")


def _threshold(value: Any) -> float | None:
    if value is None:
        return None
    number = _number(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError("must be a positive number or null")
    return number


def _opacity(value: Any) -> float:
    number = _number(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _segmentation_mode(value: Any) -> str:
    if value not in SEGMENTATION_MODES:
        raise ValueError(f"must be one of {', '.join(SEGMENTATION_MODES)}")
    return value


def _geometry(value: Any) -> str | None:
    text = _optional_text(value)
    if text is not None:
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 text") from None
    return text


def _recent_models(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError("must be a list of paths")
    return list(dict.fromkeys(value))[:MAX_RECENT_MODELS]


def _key_files(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ValueError("must be a list of public key files")
    return list(dict.fromkeys(value))


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _mqtt_url(value: Any) -> str | None:
    from urllib.parse import urlsplit

    text = _optional_text(value)
    if text is None:
        return None
    from urllib.parse import parse_qsl

    shape = "must be mqtt[s]://[user@]host[:port][/prefix][?ca=FILE&cert=FILE&key=FILE]"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True) if parts.query else []
    except ValueError:
        raise ValueError(shape) from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or "#" in text or "+" in parts.path:
        raise ValueError(f"{shape} (no wildcards)")
    if any(name not in ("ca", "cert", "key") for name, _ in query) or (query and parts.scheme != "mqtts"):
        raise ValueError(f"{shape} (TLS files only with mqtts://)")
    return text  # the TLS files are checked when the window starts (a missing one: exit 2, named)


def _station_name(value: Any) -> str | None:
    text = _optional_text(value)
    if text is not None and (len(text) > 64 or any(c in "/+#" or c.isspace() for c in text)):
        raise ValueError("must be one MQTT topic level: at most 64 characters, no '/', '+', '#' or spaces")
    return text


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number")
    return float(value)


_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "last_source": _optional_text,
    "last_model": _optional_text,
    "threshold_override": _threshold,
    "overlay_opacity": _opacity,
    "segmentation_mode": _segmentation_mode,
    "window_geometry": _geometry,
    "recent_models": _recent_models,
    "results_db": _optional_text,
    "trusted_keys": _key_files,
    "require_signed_models": _flag,
    "mqtt_url": _mqtt_url,
    "station_name": _station_name,
    "batch_folder": _optional_text,
}


def load_settings(path: str | os.PathLike | None = None) -> tuple[Settings, list[str]]:
    """Read settings, falling back to defaults for whatever is missing or wrong.

    Args:
        path: The settings file; :func:`default_settings_path` if ``None``.

    Returns:
        The settings and a list of warnings for the user or the log (empty when
        the file was fine or absent). Never raises.
    """
    path = Path(path) if path is not None else default_settings_path()
    defaults = Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return defaults, []
    except UnicodeDecodeError as exc:
        kept = _keep_aside(path, "broken")
        return defaults, [f"settings file {path} is not UTF-8 text ({exc}); using defaults{kept}"]
    except OSError as exc:
        return defaults, [f"settings file {path} could not be read ({exc}); using defaults"]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        kept = _keep_aside(path, "broken")
        return defaults, [f"settings file {path} is not valid JSON ({exc}); using defaults{kept}"]
    if not isinstance(data, dict):
        kept = _keep_aside(path, "broken")
        return defaults, [f"settings file {path} does not hold a JSON object; using defaults{kept}"]

    warnings: list[str] = []
    version = data.pop("version", SETTINGS_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        warnings.append(f"settings: version {version!r} is not a number; reading as version "
                        f"{SETTINGS_VERSION}")
    elif version > SETTINGS_VERSION:
        kept = _keep_aside(path, f"v{version}")
        warnings.append(f"settings were written by a newer Inspector (version {version}); "
                        f"settings it does not know are dropped{kept}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        validator = _VALIDATORS.get(key)
        if validator is None:
            warnings.append(f"settings: unknown setting {key!r} dropped")
            continue
        try:
            values[key] = validator(value)
        except ValueError as reason:
            default = getattr(defaults, key)
            warnings.append(
                f"settings: {key} = {value!r} {reason}; using the default {default!r}"
            )
    return Settings(**values), warnings


def save_settings(settings: Settings, path: str | os.PathLike | None = None) -> Path:
    """Write settings atomically (a temporary file in the same folder, then ``os.replace``).

    Args:
        settings: What to write; written with the current format version.
        path: The settings file; :func:`default_settings_path` if ``None``.

    Returns:
        The path written.

    Raises:
        OSError: if the folder cannot be created or written.
    """
    path = Path(path) if path is not None else default_settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = asdict(settings)
    data["version"] = SETTINGS_VERSION
    for key in ("last_model", "batch_folder"):
        if data[key]:
            data[key] = absolute_path(data[key])
    data["recent_models"] = list(dict.fromkeys(absolute_path(p) for p in data["recent_models"]))
    _guard_replaced(path)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    write_atomically(path, text.encode("utf-8"))
    return path


def _keep_aside(path: Path, why: str) -> str:
    """Copy ``path`` to ``NAME.<why>-<UTC time>`` unless that content is already kept; returns a note.

    Raises nothing: an empty note means no copy could be made.
    """
    try:
        data = path.read_bytes()
        for earlier in path.parent.glob(f"{path.name}.{why}-*"):
            if earlier.is_file() and earlier.read_bytes() == data:
                return f" (the file was kept as {earlier})"
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        backup = path.with_name(f"{path.name}.{why}-{stamp}")
        counter = 1
        while backup.exists():
            backup = path.with_name(f"{path.name}.{why}-{stamp}-{counter}")
            counter += 1
        shutil.copyfile(path, backup)
    except OSError:
        return ""
    return f" (the file was kept as {backup})"


def _guard_replaced(path: Path) -> None:
    """Before ``path`` is replaced: copy it aside if it is not a settings file this version wrote.

    Raises:
        OSError: when such a file exists and cannot be copied (it is not replaced).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    why = None
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict):
            why = "broken"
        else:
            version = data.get("version", SETTINGS_VERSION)
            if isinstance(version, int) and not isinstance(version, bool) and version > SETTINGS_VERSION:
                why = f"v{version}"
    except (UnicodeDecodeError, json.JSONDecodeError):
        why = "broken"
    if why and not _keep_aside(path, why):
        raise OSError(f"{path} is not a settings file this Inspector wrote and could not be copied "
                      "aside; it was not replaced")
