"""Immutable records that cross every boundary of the pipeline.

A source yields :class:`Frame` objects, the pipeline turns each into an
:class:`InspectionResult`, and a segmenter may attach a :class:`Heatmap`.
Images are always ``HxWx3`` ``uint8`` arrays in RGB order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One image handed over by a source.

    Attributes:
        image: ``HxWx3`` uint8 RGB pixels.
        source: Description of where it came from, e.g. ``"folder:/data/lot7"``.
        frame_id: Running number within the source.
        path: File path for file-based sources, ``None`` for cameras.
        timestamp: Acquisition time (seconds since the epoch).
    """

    image: np.ndarray
    source: str
    frame_id: int
    path: str | None = None
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Region:
    """A connected above-threshold region of a heatmap, in frame pixels."""

    x: int
    y: int
    width: int
    height: int
    area: int
    peak: float

    def as_dict(self) -> dict:
        """Plain-dict form for JSON output."""
        return {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "area": self.area,
            "peak": round(float(self.peak), 4),
        }


@dataclass(frozen=True)
class Heatmap:
    """A per-pixel anomaly map in the frame's own geometry.

    ``values`` are normalized with the model's stored pixel statistics so that
    1.0 is the calibrated pixel threshold; they are never rescaled per image.
    """

    values: np.ndarray
    method: str
    regions: tuple[Region, ...] = ()


@dataclass(frozen=True)
class InspectionResult:
    """The decision on one frame.

    Attributes:
        frame: The inspected frame.
        raw_score: The detector's score in its own units.
        score: ``raw_score / threshold``; 1.0 is the decision boundary.
        threshold: The raw threshold the decision was made with.
        anomalous: ``True`` for NG.
        model_hash: Identifies the model that made the decision.
        latency_ms: Detection time for this frame.
        heatmap: Attached later by a segmentation job, if any.
    """

    frame: Frame
    raw_score: float
    score: float
    threshold: float
    anomalous: bool
    model_hash: str
    latency_ms: float = 0.0
    heatmap: Heatmap | None = None

    @property
    def verdict(self) -> str:
        """``"NG"`` for anomalous frames, ``"OK"`` otherwise."""
        return "NG" if self.anomalous else "OK"
