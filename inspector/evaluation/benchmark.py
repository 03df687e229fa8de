"""Fit on ``train/good``, score ``test/``, and measure detection, localization and speed.

Per category: image AUROC, F1 at the calibrated threshold (held-out 1% FRR
policy, the default a user gets), fit seconds, ms per image at batch 1 (median),
images per second batched, and with a segmenter and ground-truth masks: pixel
AUROC, AUPRO (to 30% FPR) and ms per map. Per defect type (``by_type``): the
escape rate at the default threshold and, with masks, the pixel AUROC of that
type's defect pixels against the pixels of all good test images.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from inspector.catalog import DEFAULT_DETECTOR
from inspector.core.imageio import read_image
from inspector.core.progress import Progress, silent
from inspector.datasets.mvtec import Category, find_categories, load_category, load_mask
from inspector.metrics.image import auroc, f1_at
from inspector.metrics.pixel import aupro, pixel_auroc

LATENCY_FRAMES = 20
MAP_FRAMES_GRADIENT = 24


def benchmark(root: str | Path, detectors: Sequence[str] = (DEFAULT_DETECTOR,), segmenter: str | None = None,
              image_size: int | None = None, backbone: str = "lite0", progress: Progress | None = None,
              device=None, detector_options: dict | None = None, runtime: str = "torch") -> dict:
    """Benchmark each detector on each category under ``root``.

    ``runtime``: what scores the test images and draws the maps once a model is fitted:
    ``"torch"``, ``"auto"`` (the model's exported graph when it runs with parity, else torch;
    :func:`inspector.export.accelerated.accelerate`, exported into a temporary folder),
    ``"onnx"`` or ``"openvino"`` (that engine, or
    :class:`~inspector.export.accelerated.AccelerationError`). Each category's metrics
    say which runtime ran (``runtime``) and, on torch after ``auto``, why (``runtime_reason``).

    Returns:
        ``{"detectors": {kind: {"categories": {name: metrics}, "mean": metrics}}}``; with a
        single detector the same dict also carries ``categories`` and ``mean`` at the top level.
    """
    progress = progress or silent()
    categories = [load_category(path) for path in find_categories(root)]
    report: dict = {"root": str(root), "segmenter": segmenter, "detectors": {}}
    for kind in detectors:
        per_category = {}
        for category in categories:
            per_category[category.name] = benchmark_category(
                category, kind, segmenter, image_size, backbone, progress, device, detector_options or {},
                runtime=runtime)
        report["detectors"][kind] = {"categories": per_category, "mean": _mean(per_category)}
    if len(detectors) == 1:
        report.update(report["detectors"][detectors[0]])
    return report


def benchmark_category(category: Category, kind: str, segmenter: str | None, image_size: int | None,
                       backbone: str, progress: Progress, device=None, options: dict | None = None,
                       runtime: str = "torch") -> dict:
    """Fit and evaluate one detector on one category (scored on ``runtime``, see :func:`benchmark`)."""
    from inspector.pipeline.model import InspectionModel

    train = [read_image(path) for path in category.train_good]
    test = [read_image(item.path) for item in category.test]
    labels = np.array([item.label for item in category.test])
    started = time.perf_counter()
    model = InspectionModel.fit(train, detector=kind, backbone=backbone, image_size=image_size,
                                progress=_relabel(progress, f"{category.name}: fit {kind}"),
                                device=device, **(options or {}))
    fit_s = time.perf_counter() - started
    choice = None
    if runtime != "torch":
        from inspector.export.accelerated import accelerate

        model, choice = accelerate(model, runtime, cache=False)

    started = time.perf_counter()
    scores = model.score_images(test)
    images_per_s = len(test) / (time.perf_counter() - started)
    latencies = []
    for image in test[:LATENCY_FRAMES]:
        tick = time.perf_counter()
        model.score_images([image])
        latencies.append((time.perf_counter() - tick) * 1000.0)

    result = {
        "image_auroc": round(auroc(labels, scores), 4),
        "f1": round(f1_at(labels, scores, model.threshold), 4),
        # What users live with: the default threshold's escapes and false rejects on the test images.
        "escape": round(float(np.mean(scores[labels == 1] <= model.threshold)), 4) if labels.any() else None,
        "frr": round(float(np.mean(scores[labels == 0] > model.threshold)), 4) if (labels == 0).any() else None,
        "frr_shown_max": round(model.calibration.frr.high, 4),
        # The measured rates' own uncertainty: test sets of a few dozen images say little more.
        **_measured_intervals(scores, labels, model.threshold),
        "fit_s": round(fit_s, 2),
        "ms_per_image": round(statistics.median(latencies), 2),
        "images_per_s": round(images_per_s, 1),
        "n_train": len(train),
        "n_test": len(test),
        "runtime": choice.runtime if choice is not None else "torch",
    }
    if choice is not None and choice.runtime == "torch":
        result["runtime_reason"] = choice.reason
    types = np.array([item.defect_type for item in category.test])
    result["by_type"] = {
        kind_: {"n": int(np.sum(types == kind_)),
                "escape": round(float(np.mean(scores[types == kind_] <= model.threshold)), 4)}
        for kind_ in sorted(set(types[labels == 1]))
    }
    if segmenter and any(item.mask_path for item in category.test):
        result.update(_localization(model, category, test, segmenter, progress, result["by_type"]))
    return result


def _measured_intervals(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """Counts and 95 % Clopper-Pearson intervals of the escapes and false rejects measured at ``threshold``."""
    from inspector.calibration.intervals import proportion_estimate

    good, bad = scores[labels == 0], scores[labels == 1]
    out = {}
    for key, count, total in (("escape", int(np.sum(bad <= threshold)), len(bad)),
                              ("frr", int(np.sum(good > threshold)), len(good))):
        if total:
            estimate = proportion_estimate(count, total)
            out[f"{key}_count"] = [count, total]
            out[f"{key}_interval"] = [round(estimate.low, 4), round(estimate.high, 4)]
    return out


def _localization(model, category: Category, test: list[np.ndarray], segmenter: str, progress: Progress,
                  by_type: dict) -> dict:
    indices = list(range(len(test)))
    if segmenter == "gradient":
        indices = _balanced_subset(category, MAP_FRAMES_GRADIENT)
    masks, maps, times = [], [], []
    step = _relabel(progress, f"{category.name}: {segmenter} maps")
    for done, index in enumerate(indices):
        tick = time.perf_counter()
        heatmap = model.heatmaps([test[index]], method=segmenter)[0]
        times.append((time.perf_counter() - tick) * 1000.0)
        masks.append(load_mask(category.test[index], test[index].shape[:2]))
        maps.append(heatmap.values)
        step.update(done + 1, len(indices), "")
    types = [category.test[index].defect_type for index in indices]
    good = [i for i, index in enumerate(indices) if category.test[index].label == 0]
    for kind_, row in by_type.items():
        chosen = good + [i for i, t in enumerate(types) if t == kind_ and masks[i].any()]
        if len(chosen) > len(good):
            row["pixel_auroc"] = round(pixel_auroc([masks[i] for i in chosen], [maps[i] for i in chosen]), 4)
    return {
        "pixel_auroc": round(pixel_auroc(masks, maps), 4),
        "aupro": round(aupro(masks, maps), 4),
        "ms_per_map": round(statistics.median(times), 1),
        "n_maps": len(indices),
    }


def _balanced_subset(category: Category, count: int) -> list[int]:
    """Every k-th test image, so that good and each defect type stay represented."""
    total = len(category.test)
    if total <= count:
        return list(range(total))
    return sorted({int(i) for i in np.linspace(0, total - 1, count)})


def _relabel(progress: Progress, label: str) -> Progress:
    outer = progress

    class _Labelled(Progress):
        def update(self, done: int, total: int, message: str = "") -> None:
            outer.update(done, total, f"{label} {message}".strip())

        def check(self) -> None:
            outer.check()

    return _Labelled()


def _mean(per_category: dict) -> dict:
    keys = ("image_auroc", "f1", "escape", "frr", "fit_s", "ms_per_image", "images_per_s", "pixel_auroc", "aupro", "ms_per_map")
    mean = {}
    for key in keys:
        values = [m[key] for m in per_category.values() if key in m]
        if values:
            mean[key] = round(float(np.mean([v for v in values if v is not None])), 4) if any(
                v is not None for v in values) else None
    return mean
