"""Versioned, forgiving JSON settings.

A missing file gives the defaults; a broken file gives the defaults and a
warning (and is kept as ``settings.json.broken`` so the next save does not
destroy it); unknown keys are dropped and invalid values replaced by their
defaults, each with a warning. Loading never raises. Saving is atomic.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from platformdirs import user_config_dir

SETTINGS_VERSION = 1
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

    def add_recent_model(self, path: str) -> None:
        """Put ``path`` first in :attr:`recent_models` (once), keeping at most 10."""
        self.recent_models = [path] + [p for p in self.recent_models if p != path]
        del self.recent_models[MAX_RECENT_MODELS:]


def default_settings_path() -> Path:
    """``$INSPECTOR_CONFIG_DIR/settings.json``, or the same file in the user config dir."""
    folder = os.environ.get("INSPECTOR_CONFIG_DIR") or user_config_dir("inspector")
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
    except (OSError, UnicodeDecodeError) as exc:
        return defaults, [f"settings file {path} could not be read ({exc}); using defaults"]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        kept = _keep_broken(path)
        return defaults, [f"settings file {path} is not valid JSON ({exc}); using defaults{kept}"]
    if not isinstance(data, dict):
        kept = _keep_broken(path)
        return defaults, [f"settings file {path} does not hold a JSON object; using defaults{kept}"]

    warnings: list[str] = []
    version = data.pop("version", SETTINGS_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        warnings.append(f"settings: version {version!r} is not a number; reading as version "
                        f"{SETTINGS_VERSION}")
    elif version > SETTINGS_VERSION:
        warnings.append(f"settings were written by a newer Inspector (version {version}); "
                        "settings it does not know are dropped")
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
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    return path


def _keep_broken(path: Path) -> str:
    """Copy a broken file aside so the next save does not destroy it; returns a note."""
    backup = path.with_name(path.name + ".broken")
    try:
        shutil.copyfile(path, backup)
    except OSError:
        return ""
    return f" (the broken file was copied to {backup})"
