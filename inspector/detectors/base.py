"""The Detector interface every anomaly detector implements, and the registry of them.

A detector learns from good images only. :meth:`Detector.fit` returns the
held-out scores (and maps) of good images that calibration needs: scores of
images a model was fitted on are biased low, so each detector scores images it
did not see (k-fold refits for cheap models, a validation split for trained ones).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Sequence

import numpy as np
import torch

from inspector.backbones.preprocessing import Preprocessing
from inspector.catalog import DEFAULT_DETECTOR
from inspector.core.plugins import import_submodules
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

    Subclasses set ``kind`` and are registered with :func:`register` in their own
    module of this package: the registry finds them there, so a new detector is one
    new file. Their state must be fully described by :meth:`config` (JSON-able) and
    :meth:`tensors` so that :meth:`from_state` rebuilds them without unpickling anything.
    """

    kind: ClassVar[str] = ""
    title: ClassVar[str] = ""
    """Short human name for lists (the GUI); :meth:`display_title` falls back to ``kind``."""
    description: ClassVar[str] = ""
    """One line for help texts; :meth:`summary` falls back to the class docstring's first line."""
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

    @classmethod
    def display_title(cls) -> str:
        """The class's own ``title``, else its ``kind``."""
        return cls.__dict__.get("title") or cls.kind

    @classmethod
    def summary(cls) -> str:
        """The class's own ``description``, else the first line of its docstring."""
        own = cls.__dict__.get("description")
        if own:
            return own
        doc = (inspect.getdoc(cls) or "").strip()
        return doc.splitlines()[0].rstrip(".").replace("``", "") if doc else cls.kind

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The keyword options the constructor takes (``fit --option`` names), private ones left out."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in parameters if p.name != "self" and not p.name.startswith("_")
                     and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    @classmethod
    def has_fast_map_option(cls) -> bool:
        """Whether the fast map can be switched off at fit time (the constructor takes ``fast_map``)."""
        return "fast_map" in cls.options()

    def held_out_twin(self) -> tuple["Detector", np.ndarray | None]:
        """A detector that did not see some references, and their indices, for unbiased held-out maps.

        By default the detector itself and ``None`` (no references were held out: callers
        take the first references, whose maps are then slightly optimistic). Detectors that
        keep a calibration fold after :meth:`fit` return a twin without it and that fold.
        """
        return self, None

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
_discovered = False


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator that makes a detector available by its ``kind``.

    Raises:
        ValueError: for an empty ``kind`` or one another class already holds.
    """
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    other = _CLASSES.get(cls.kind)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"detector kind {cls.kind!r} is taken by {other.__qualname__}")
    _CLASSES[cls.kind] = cls
    return cls


def discover_detectors() -> None:
    """Import every module of the ``inspector.detectors`` package once, so each registers its classes.

    No list of modules is kept: a detector is found by writing its file here.
    """
    global _discovered
    if _discovered:
        return
    import_submodules(__package__)
    _discovered = True


def detector_kinds() -> tuple[str, ...]:
    """Names of all registered detectors: the default first, then backbone detectors, then by name."""
    discover_detectors()
    return tuple(sorted(_CLASSES, key=lambda kind: (kind != DEFAULT_DETECTOR,
                                                    not _CLASSES[kind].uses_backbone, kind)))


def detector_classes() -> tuple[type[Detector], ...]:
    """The registered detector classes, in :func:`detector_kinds` order."""
    return tuple(_CLASSES[kind] for kind in detector_kinds())


@dataclass(frozen=True)
class DetectorEntry:
    """What lists, help texts and combo boxes show of one registered detector."""

    kind: str
    title: str
    description: str
    uses_backbone: bool
    options: tuple[str, ...]


def detector_catalog() -> tuple[DetectorEntry, ...]:
    """One entry per registered detector, in :func:`detector_kinds` order."""
    return tuple(DetectorEntry(cls.kind, cls.display_title(), cls.summary(), cls.uses_backbone, cls.options())
                 for cls in detector_classes())


def detector_class(kind: str) -> type[Detector]:
    """The detector class registered under ``kind``.

    Raises:
        ValueError: for an unknown kind.
    """
    discover_detectors()
    if kind not in _CLASSES:
        raise ValueError(f"unknown detector {kind!r}; choose one of {', '.join(detector_kinds())}")
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
