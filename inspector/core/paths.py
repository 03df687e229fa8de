"""Where Inspector keeps its files: one module, one platformdirs policy.

Every default location derives from :func:`data_dir` or :func:`config_dir`,
which honour ``$INSPECTOR_DATA_DIR`` and ``$INSPECTOR_CONFIG_DIR`` (tests, a
shared station account, a portable install) and otherwise follow the platform's
conventions with no vendor folder (``appauthor=False``): on Linux
``~/.local/share/inspector`` and ``~/.config/inspector``.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir

APP_NAME = "inspector"


def data_dir() -> Path:
    """Results database, NG images, the journal, fitted models and the demo: ``$INSPECTOR_DATA_DIR`` if set."""
    return Path(os.environ.get("INSPECTOR_DATA_DIR") or user_data_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """Settings: ``$INSPECTOR_CONFIG_DIR`` if set."""
    return Path(os.environ.get("INSPECTOR_CONFIG_DIR") or user_config_dir(APP_NAME, appauthor=False))


def models_dir() -> Path:
    """Where the station saves models it fits (refit dialog)."""
    return data_dir() / "models"


def demo_dir() -> Path:
    """Where the built-in demo's images and model live."""
    return data_dir() / "demo"
