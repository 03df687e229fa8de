"""Small stand-ins for the GUI tests: a stub model, a fake camera capture, a signal recorder."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject

from inspector.calibration.policies import calibrate
from inspector.core.imageio import write_image
from inspector.core.records import Heatmap, InspectionResult, Region


class CallCounter:
    """A thread-safe counter shared by a stub model and its recalibrated copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


class StubModel:
    """Implements the parts of the InspectionModel facade the GUI uses; score = mean brightness / 255."""

    detector_kind = "stub"
    backbone = None
    device = "cpu"
    supported_segmenters = ("fast",)

    def __init__(self, threshold: float = 0.5, good=None, bad=(), delay: float = 0.0, name: str = "stub",
                 counter: CallCounter | None = None, detector: object | None = None, calibration=None) -> None:
        good = np.linspace(0.2, 0.45, 40) if good is None else good
        self.calibration = calibration or calibrate(good, bad, policy="manual", threshold=threshold)
        self.delay = delay
        self.name = name
        self.score_calls = counter or CallCounter()
        self.map_calls = CallCounter()
        self.images_scored = CallCounter()
        self.detector = detector or object()
        self.info = {"n_reference": len(good)}
        self.model_hash = hashlib.sha256(f"{name}{self.calibration.threshold}".encode()).hexdigest()

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def score_images(self, images) -> np.ndarray:
        self.score_calls.add()
        self.images_scored.add(len(images))
        if self.delay:
            time.sleep(self.delay)
        return np.array([float(np.mean(image)) / 255.0 for image in images])

    def inspect(self, frames, threshold=None):
        limit = self.threshold if threshold is None else threshold
        started = time.perf_counter()
        scores = self.score_images([f.image for f in frames])
        latency = (time.perf_counter() - started) * 1000 / max(len(frames), 1)
        return [InspectionResult(frame=f, raw_score=float(s), score=float(s) / limit, threshold=limit,
                                 anomalous=bool(s > limit), model_hash=self.model_hash, latency_ms=latency)
                for f, s in zip(frames, scores)]

    def heatmaps(self, images, method="fast", progress=None):
        self.map_calls.add()
        maps = []
        for image in images:
            values = image.mean(axis=2).astype(np.float32) / 128.0
            h, w = values.shape
            maps.append(Heatmap(values, method, (Region(w // 4, h // 4, w // 2, h // 2, h * w // 4, float(values.max())),)))
        return maps

    def with_calibration(self, calibration) -> "StubModel":
        return StubModel(name=self.name, counter=self.score_calls, detector=self.detector, calibration=calibration,
                         delay=self.delay)

    def save(self, path) -> str:
        Path(path).write_text(json.dumps({"stub": self.name, "threshold": self.threshold}))
        return self.model_hash


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
