"""Speed figures: detection latency and throughput against the bare backbone pass."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Sequence

import numpy as np
import torch


def _median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        function()
        times.append((time.perf_counter() - tick) * 1000.0)
    return statistics.median(times)


def measure_speed(model, frames: Sequence[np.ndarray], repeats: int = 30, batch_size: int = 16) -> dict:
    """Latency (batch 1) and throughput (batched) of detection and of the bare backbone.

    Args:
        model: A fitted :class:`~inspector.pipeline.model.InspectionModel` with a backbone detector.
        frames: RGB uint8 frames to run on (cycled).
    """
    detector = model.detector
    first = [frames[0]]
    batch = [frames[i % len(frames)] for i in range(batch_size)]
    prep = detector.preprocessing
    net = getattr(detector, "net", None)

    def bare(images):
        with torch.inference_mode():
            return net(prep.to_tensor(images, detector.device))

    for _ in range(3):  # warm-up: allocator, kernels, caches
        model.score_images(first)
        model.score_images(batch)
    result = {
        "detect_ms": _median_ms(lambda: model.score_images(first), repeats),
        "detect_batch_ms": _median_ms(lambda: model.score_images(batch), max(3, repeats // 5)),
    }
    if net is not None:
        bare(first)
        result["backbone_ms"] = _median_ms(lambda: bare(first), repeats)
        result["backbone_batch_ms"] = _median_ms(lambda: bare(batch), max(3, repeats // 5))
        result["overhead_ratio"] = result["detect_ms"] / result["backbone_ms"]
        result["batch_overhead_ratio"] = result["detect_batch_ms"] / result["backbone_batch_ms"]
    result["fps_single"] = 1000.0 / result["detect_ms"]
    result["images_per_s_batched"] = batch_size * 1000.0 / result["detect_batch_ms"]
    if "fast" in model.supported_segmenters:
        for _ in range(2):
            detector.score_and_maps(first)
        result["detect_with_fast_map_ms"] = _median_ms(lambda: detector.score_and_maps(first), repeats)
    return result


def model_file_mb(model) -> float:
    """Size of the model when saved, in MB."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        model.save(path)
        return os.path.getsize(path) / 1e6
