"""Finding the implementations of a concept by the files that hold them, not by a hand-kept list."""

from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package: str) -> None:
    """Import every module of ``package`` (e.g. ``inspector.detectors``), so each can register itself."""
    root = importlib.import_module(package)
    for module in pkgutil.iter_modules(root.__path__, prefix=f"{package}."):
        importlib.import_module(module.name)
