"""The Detector interface every anomaly detector implements, and the registry of them.

A detector learns from good images only. :meth:`Detector.fit` returns the
held-out scores (and maps) of good images that calibration needs: scores of
images a model was fitted on are biased low, so each detector scores images it
did not see (k-fold refits for cheap models, a validation split for trained ones).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch

from inspector.backbones.preprocessing import Preprocessing
from inspector.core.progress import Progress


@dataclass(frozen=True)
class FitResult:
    """What fitting learned about good images it did not train on.

    Attributes:
        held_out_scores: Raw image scores of held-out good images, shape ``(N,)``.
        held_out_maps: Raw anomaly maps of held-out good images, ``(M, S, S)``, or
            ``None`` when the detector has no map.
    """

    held_out_scores: np.ndarray
    held_out_maps: np.ndarray | None = None


class Detector(ABC):
    """An anomaly detector: fitted on good images, it scores images (higher = worse).

    Subclasses set ``kind`` and are registered with :func:`register`. Their state
    must be fully described by :meth:`config` (JSON-able) and :meth:`tensors` so that
    :meth:`from_state` rebuilds them without unpickling anything.
    """

    kind: ClassVar[str] = ""
    uses_backbone: ClassVar[bool] = False
    """Whether the detector runs on a pretrained backbone (takes ``backbone``, ``weights``, ``image_size``)."""
    preprocessing: Preprocessing
    device: torch.device

    @abstractmethod
    def fit(self, images: Sequence[np.ndarray], progress: Progress, folds: int = 5) -> FitResult:
        """Fit on good RGB uint8 images; return held-out statistics for calibration."""

    @abstractmethod
    def score(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw anomaly scores, shape ``(N,)``, float64."""

    def score_and_maps(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores and raw maps (``(N, S, S)`` at the input size) in one pass if possible."""
        return self.score(images), None

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        """Score of preprocessed inputs as a differentiable tensor ``(N,)`` (for gradient maps)."""
        raise NotImplementedError(f"{self.kind} has no differentiable score")

    @property
    def has_maps(self) -> bool:
        """Whether :meth:`score_and_maps` returns maps (the fast map, from the scoring pass)."""
        return False

    @property
    def supports_gradient(self) -> bool:
        """Whether the detector has a :meth:`differentiable_score`, so gradient maps can be drawn."""
        return type(self).differentiable_score is not Detector.differentiable_score

    @property
    def backbone_name(self) -> str | None:
        """The pretrained backbone used, if any."""
        return None

    @property
    def backbone_sha256(self) -> str | None:
        """Hash of the pretrained backbone weights, if any."""
        return None

    @abstractmethod
    def config(self) -> dict:
        """JSON-able configuration (without tensors)."""

    @abstractmethod
    def tensors(self) -> dict[str, torch.Tensor]:
        """All learned tensors, by name."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device) -> "Detector":
        """Rebuild a fitted detector from :meth:`config` and :meth:`tensors`."""


_CLASSES: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator that makes a detector available by its ``kind``."""
    _CLASSES[cls.kind] = cls
    return cls


def _load_builtin_detectors() -> None:
    import importlib

    for module in ("fusion", "gaussian", "autoencoder", "vae", "anogan"):
        try:
            importlib.import_module(f"inspector.detectors.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"inspector.detectors.{module}":
                raise


def detector_kinds() -> tuple[str, ...]:
    """Names of all registered detectors."""
    _load_builtin_detectors()
    return tuple(_CLASSES)


def detector_class(kind: str) -> type[Detector]:
    """The detector class registered under ``kind``.

    Raises:
        ValueError: for an unknown kind.
    """
    _load_builtin_detectors()
    if kind not in _CLASSES:
        raise ValueError(f"unknown detector {kind!r}; choose one of {', '.join(_CLASSES)}")
    return _CLASSES[kind]


def pick_device(device: torch.device | str | None = None) -> torch.device:
    """The given device, else CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batches(items: Sequence, size: int):
    """Yield consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


LEAVE_ONE_OUT_UP_TO = 40
MANY_FOLDS = 10


def resolve_folds(count: int, folds: int | None) -> int:
    """The number of calibration folds: ``folds`` if given, else leave-one-out up to 40 images, else 10.

    Held-out scores come from models fitted on ``(k - 1) / k`` of the references, the
    production model on all of them; the fewer references, the more that difference
    biases the held-out scores high (measured: a 5-fold threshold on 20 references
    rejected fewer unseen good parts than its interval said), hence more folds.
    """
    if folds:
        return int(folds)
    return max(2, count) if count <= LEAVE_ONE_OUT_UP_TO else MANY_FOLDS


def kfold_indices(count: int, folds: int, seed: int = 0) -> list[np.ndarray]:
    """Split ``range(count)`` into ``folds`` shuffled, nearly equal held-out index sets.

    Raises:
        ValueError: when there are fewer images than folds.
    """
    if folds < 2:
        raise ValueError("calibration needs at least 2 folds")
    if count < folds:
        raise ValueError(f"{count} reference images are fewer than the {folds} calibration folds")
    order = np.random.default_rng(seed).permutation(count)
    return [np.sort(part) for part in np.array_split(order, folds)]
