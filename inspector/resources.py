"""Locating the data files shipped beside the package (the top-level ``resources/`` folder).

From a source checkout (or an editable install) they lie in ``resources/`` next to the
``inspector`` package. In an app frozen by PyInstaller the spec copies them to
``resources/`` under the bundle's data folder, ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def resources_root() -> Path:
    """The ``resources`` folder: in the PyInstaller bundle when frozen, else in the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a shipped file or folder, e.g. ``resource_path("textures")``."""
    return resources_root().joinpath(*parts)
