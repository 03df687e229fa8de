"""Speed figures: detection latency and throughput against the bare backbone pass, and the runtimes side by side.

:func:`measure_runtimes` times the same model on torch and on its exported graph
(onnxruntime, OpenVINO), the runtimes taking turns call by call in one process
(:func:`interleaved_ms`), so that a change of machine load hits all of them alike.
"""

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


RUNTIME_ORDER = ("torch", "onnx", "openvino")
"""The runtimes ``inspector speed`` can time (``--runtime auto``: all of them that run the model)."""


def interleaved_ms(runners: dict, call_args, repeats: int, warmup: int = 3) -> dict[str, list[float]]:
    """Milliseconds per call of each runner (``name -> function(call_args)``), the runners taking turns
    (the first one rotating from repeat to repeat), after ``warmup`` calls each."""
    names = list(runners)
    for name in names:  # warm-up: allocator, kernels, caches
        for _ in range(warmup):
            runners[name](call_args)
    times: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            tick = time.perf_counter()
            runners[name](call_args)
            times[name].append((time.perf_counter() - tick) * 1000.0)
    return times


def measure_runtimes(model, frames: Sequence, runtimes: Sequence[str] = RUNTIME_ORDER, repeats: int = 30,
                     batch_size: int = 16, threads: int | None = None) -> dict:
    """Batch-1 latency and batched throughput of ``model.inspect`` on each runtime, interleaved.

    Every runtime decides the same frames through the facade's ``inspect`` (the fast map drawn
    when the model has one): the torch model itself, and the model accelerated on its graph
    (:func:`inspector.export.accelerated.accelerate`, exported into a temporary folder, parity
    checked). A runtime that cannot run the model is reported with its reason, not timed.

    Args:
        model: A fitted torch :class:`~inspector.pipeline.model.InspectionModel`.
        frames: :class:`~inspector.core.records.Frame` objects (cycled to ``batch_size``).
        runtimes: Among :data:`RUNTIME_ORDER`.
        threads: The engines' intra-op threads (default: torch's).

    Returns:
        ``{name: {"runtime", "batch1_ms", "batch1_min_ms", "batch_images_per_s", "speedup",
        "parity_worst", "reason"}}`` by engine name (``torch``, ``onnxruntime``, ``openvino``);
        ``speedup`` is torch's batch-1 median over this one's. Runtimes that did not run have
        only ``runtime`` and ``reason``.
    """
    from inspector.export.accelerated import RUNTIME_NAMES, AccelerationError, accelerate

    maps = "fast" if "fast" in model.supported_segmenters else None
    models, out = {}, {}
    for runtime in runtimes:
        name = RUNTIME_NAMES[runtime]
        if runtime == "torch":
            models[name], out[name] = model, {"runtime": name, "reason": "the torch model", "parity_worst": 0.0}
            continue
        try:
            fast, choice = accelerate(model, runtime, threads=threads, cache=False)
        except AccelerationError as exc:
            out[name] = {"runtime": name, "reason": str(exc)}
            continue
        models[name] = fast
        out[name] = {"runtime": name, "reason": choice.reason, "parity_worst": choice.worst}
    runners = {name: (lambda fs, m=m: m.inspect(fs, maps=maps)) for name, m in models.items()}
    batch = [frames[i % len(frames)] for i in range(batch_size)]
    single = interleaved_ms(runners, batch[:1], repeats)
    batched = interleaved_ms(runners, batch, max(3, repeats // 5), warmup=1)
    base = statistics.median(single["torch"]) if "torch" in single else None
    for name in models:
        median = statistics.median(single[name])
        out[name].update(batch1_ms=median, batch1_min_ms=min(single[name]),
                         batch_images_per_s=batch_size * 1000.0 / statistics.median(batched[name]),
                         speedup=None if base is None else base / median)
    return out
