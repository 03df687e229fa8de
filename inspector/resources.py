"""Locating the data files Inspector ships (the demo's and the synthetic data sets' textures).

The source tree keeps them in the top-level ``resources/`` folder next to the ``inspector``
package (a checkout, an editable install). A wheel or a non-editable ``pip install .``
carries them inside the package, as ``inspector/_resources/`` (``setup.py`` copies them
there when the package is built), so nothing named ``resources`` lands at the top of
site-packages. In an app frozen by PyInstaller the spec copies them to ``resources/``
under the bundle's data folder, ``sys._MEIPASS``.
"""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE_FOLDER = "_resources"
"""The folder inside the installed package that holds the shipped files."""


def resources_root() -> Path:
    """The folder of shipped files: the PyInstaller bundle's when frozen, else the installed package's
    ``_resources`` when it is there, else the source tree's ``resources``."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "resources"
    package = Path(__file__).resolve().parent
    installed = package / PACKAGE_FOLDER
    if installed.is_dir():
        return installed
    return package.parent / "resources"


def resource_path(*parts: str) -> Path:
    """Path of a shipped file or folder, e.g. ``resource_path("textures")``."""
    return resources_root().joinpath(*parts)
