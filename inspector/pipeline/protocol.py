"""What the workers and the window need from a model, as a :class:`typing.Protocol`.

:class:`inspector.pipeline.model.InspectionModel` satisfies it; the workers are
typed against it, so they depend on this shape and not on the facade's module
(which imports torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np

from inspector.core.policy import Threshold
from inspector.core.progress import Progress
from inspector.core.records import Frame, Heatmap, InspectionResult

if TYPE_CHECKING:
    from inspector.calibration.policies import Calibration
    from inspector.detectors.base import Detector


@runtime_checkable
class InspectingModel(Protocol):
    """A fitted, calibrated model as the station uses it (immutable in use)."""

    calibration: "Calibration"
    detector: "Detector"
    info: dict

    @property
    def model_hash(self) -> str:
        """Content hash; recorded with every decision."""

    @property
    def detector_kind(self) -> str:
        """The detector's registered name."""

    @property
    def backbone(self) -> str | None:
        """The pretrained backbone, if any."""

    @property
    def threshold(self) -> float:
        """The calibrated raw threshold."""

    @property
    def decision(self) -> Threshold:
        """The calibrated threshold as the decision rule."""

    @property
    def supported_segmenters(self) -> tuple[str, ...]:
        """Map methods the model can draw (``"fast"``, ``"gradient"``)."""

    def inspect(self, frames: Sequence[Frame], maps: str | None = None, threshold: Threshold | float | None = None,
                maps_on: str = "all") -> list[InspectionResult]:
        """One complete record per frame, from one backbone pass."""

    def heatmaps(self, images: Sequence[np.ndarray], method: str = "fast", progress: Progress | None = None,
                 fast: Sequence[Heatmap] | None = None) -> list[Heatmap]:
        """Maps in each image's geometry, normalized with stored statistics."""

    def with_calibration(self, calibration: "Calibration") -> "InspectingModel":
        """A model sharing the detector, deciding with ``calibration``."""

    def save(self, path: str | Path) -> str:
        """Write the model file; returns the model hash."""
