"""Small stand-ins for the GUI tests: a tiny registered detector, a fake camera capture, a signal recorder.

The station tests run the real :class:`~inspector.pipeline.model.InspectionModel`
facade around :class:`BrightnessDetector`, a registered detector without a
backbone: score = mean brightness / 255, fast map = brightness / 128.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PySide6.QtCore import QObject

from inspector.backbones.preprocessing import Preprocessing
from inspector.calibration.policies import calibrate
from inspector.core.imageio import write_image
from inspector.detectors.base import Detector, FitResult, register
from inspector.pipeline.model import InspectionModel
from inspector.segmentation.pixel_calibration import PixelCalibration


class CallCounter:
    """A thread-safe counter shared by a detector and the models built around it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


@register
class BrightnessDetector(Detector):
    """A detector for station tests: no backbone, one "pass" per scoring call.

    Args:
        name: Part of the config, so differently named detectors have different model hashes.
        delay: Seconds each pass sleeps (a slow model), not part of the config.
        image_size: The map's square size.
        device: Torch device (only the CPU is used).
    """

    kind = "test-brightness"
    MAP_SIZE = 16

    def __init__(self, name: str = "stub", delay: float = 0.0, image_size: int | None = None,
                 device: torch.device | str | None = None) -> None:
        self.name = name
        self.delay = delay
        self.preprocessing = Preprocessing(image_size=image_size or self.MAP_SIZE)
        self.device = torch.device("cpu")
        self.passes = CallCounter()
        self.images_scored = CallCounter()

    def _pass(self, images: Sequence[np.ndarray], with_maps: bool):
        self.passes.add()
        self.images_scored.add(len(images))
        if self.delay:
            time.sleep(self.delay)
        scores = np.array([float(np.mean(image)) / 255.0 for image in images], dtype=np.float64)
        if not with_maps:
            return scores, None
        size = self.preprocessing.image_size
        maps = np.stack([np.asarray(torch.nn.functional.interpolate(
            torch.from_numpy(image.mean(axis=2, dtype=np.float32))[None, None], size=(size, size),
            mode="area")[0, 0]) / 128.0 for image in images])
        return scores, maps

    def fit(self, images, progress, folds=5) -> FitResult:
        """Nothing to learn; the held-out values are the images' own."""
        scores, maps = self._pass(images, True)
        return FitResult(scores, maps)

    def score(self, images) -> np.ndarray:
        """Mean brightness / 255."""
        return self._pass(images, False)[0]

    def score_and_maps(self, images):
        """Scores and brightness maps from one pass."""
        return self._pass(images, True)

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        """Mean brightness of preprocessed inputs (in [-1, 1]), so gradient maps can be drawn."""
        return (x * 0.5 + 0.5).mean(dim=(1, 2, 3))

    @property
    def has_maps(self) -> bool:
        """It draws a fast map."""
        return True

    def config(self) -> dict:
        """Name and map size."""
        return {"name": self.name, "image_size": self.preprocessing.image_size}

    def tensors(self) -> dict[str, torch.Tensor]:
        """A token tensor (the model file needs one)."""
        return {"size": torch.tensor([self.preprocessing.image_size])}

    @classmethod
    def from_state(cls, config, tensors, device) -> "BrightnessDetector":
        """Rebuild from :meth:`config`."""
        return cls(config["name"], image_size=int(config["image_size"]), device=device)


def stub_model(threshold: float = 0.5, good=None, bad=(), delay: float = 0.0,
              name: str = "stub", calibration=None) -> InspectionModel:
    """The real facade around a :class:`BrightnessDetector`, with a manual threshold.

    Its pixel calibration maps brightness 128 to the pixel threshold (1.0).
    """
    good = np.linspace(0.2, 0.45, 40) if good is None else good
    calibration = calibration or calibrate(good, bad, policy="manual", threshold=threshold)
    return InspectionModel(BrightnessDetector(name, delay), calibration,
                           {"fast": PixelCalibration(floor=0.0, threshold=1.0)}, {"n_reference": len(good)})


def gray_folder(folder: Path, levels) -> list[Path]:
    """Write one small solid-gray PNG per level (mean brightness = level)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, level in enumerate(levels):
        image = np.full((40, 48, 3), int(level), dtype=np.uint8)
        image[5:10, 5:10] = 255 - int(level)  # some structure so it is not uniform
        path = folder / f"img_{i:03d}.png"
        write_image(path, image)
        paths.append(path)
    return paths


class FlakyCapture:
    """A fake cv2.VideoCapture: frames until ``fail_after``, then read() fails (cable pulled)."""

    def __init__(self, fail_after: int | None = None, opened: bool = True, level: int = 60) -> None:
        self.fail_after = fail_after
        self.opened = opened
        self.level = level
        self.reads = 0

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened

    def read(self):
        time.sleep(0.01)
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            return False, None
        image = np.full((48, 64, 3), self.level, dtype=np.uint8)
        image[:, : self.reads % 64] = 30
        return True, image

    def release(self) -> None:
        self.opened = False


class Recorder(QObject):
    """Collects signal arguments on the GUI thread (a lambda would run on the emitting thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __call__(self, *args) -> None:
        self.calls.append(args)

    def record(self, *args) -> None:
        self.calls.append(args)
