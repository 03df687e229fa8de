"""Speed of the anomaly maps: ms per fast map on top of the backbone pass, s per gradient map.

    python tests/benchmarks/bench_segmentation_speed.py [--backbone lite0] [--reference 30] [--repeats 30]
                                            [--gradient-repeats 3] [--threads N] [--device cpu|cuda]
                                            [--no-malloc-tuning]

Fits a Gaussian detector with the fast map on generated brick images (224 px,
the Lite0 input size, so no resize is timed), then at batch 1 times: the score
alone, the score with the fast map from the same pass, the patch map on cached
features alone, and one gradient-projection map with the default settings (with
and without fast-map step weights). Medians and minima are printed: on a shared
machine the median includes waiting for the CPU, the minimum is closer to the
cost on an idle one. Targets: a few ms per fast map, at most 2 s per gradient map.

On a 2-core machine that other processes keep busy, torch's default of 2 threads
can make every parallel region wait for a descheduled thread (10-50x slower);
compare with ``--threads 1``. Like ``inspector speed``, glibc's allocator is tuned
first (:func:`inspector.core.malloc_tuning.tune_malloc`) unless ``--no-malloc-tuning``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from inspector.core.imageio import read_image
from inspector.core.malloc_tuning import tune_malloc
from inspector.core.progress import silent
from inspector.datasets.mvtec import load_category
from inspector.datasets.synthetic import generate_dataset
from inspector.detectors.gaussian import GaussianDetector
from inspector.segmentation.gradient import (
    DEFAULT_ALPHA,
    DEFAULT_ITERATIONS,
    DEFAULT_LAMBDA,
    gradient_map,
    gradient_scale,
)
from inspector.segmentation.pixel_calibration import (
    fit_pixel_calibration,
    normalize_map,
)

SIZE = 224


def _times(fn, repeats: int, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - start
    return out


def _summary(times: np.ndarray, unit: str = "ms") -> str:
    scale = 1000.0 if unit == "ms" else 1.0
    return f"median {np.median(times) * scale:.2f} {unit}, min {np.min(times) * scale:.2f} {unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="lite0")
    parser.add_argument("--reference", type=int, default=30, help="good images to fit on")
    parser.add_argument("--repeats", type=int, default=30, help="timed fast-map runs")
    parser.add_argument("--gradient-repeats", type=int, default=3, help="timed gradient maps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's allocation defaults")
    args = parser.parse_args(argv)
    if not args.no_malloc_tuning:
        tune_malloc()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        root = generate_dataset(Path(tmp), categories=["brick"], image_size=SIZE, n_train=args.reference,
                                n_test_good=1, n_test_defect_per_type=1, defect_types=["hole"], seed=0)
        category = load_category(root / "brick")
        reference = [read_image(p) for p in category.train_good]
        frame = read_image(next(item.path for item in category.test if item.label == 1))

    detector = GaussianDetector(backbone=args.backbone, image_size=SIZE, fast_map=True, device=args.device)
    start = time.perf_counter()
    result = detector.fit(reference, silent(), folds=5)
    fit_seconds = time.perf_counter() - start
    patch = detector.patch_map
    size_mb = sum(t.numel() * t.element_size() for t in patch.tensors().values()) / 1e6
    print(f"device {detector.device}, torch threads {torch.get_num_threads()}, backbone {args.backbone}, "
          f"input {SIZE}x{SIZE}, patch map levels {patch.levels} ({size_mb:.2f} MB of tensors)")
    print(f"fit on {len(reference)} images (backbone pass, k-fold Gaussians, held-out patch map): "
          f"{fit_seconds:.1f} s")

    sync = torch.cuda.synchronize if detector.device.type == "cuda" else (lambda: None)
    score = _times(lambda: detector.score([frame]), args.repeats)
    both = _times(lambda: detector.score_and_maps([frame]), args.repeats)
    with torch.inference_mode():
        x = detector.preprocessing.to_tensor([frame], detector.device)
        features = detector.net(x, upto=max(patch.levels))
        spatial = [features[level] for level in patch.levels]

    def patch_only() -> None:
        patch.maps(spatial, SIZE)
        sync()

    alone = _times(patch_only, args.repeats)
    print(f"score only, batch 1:           {_summary(score)}")
    print(f"score + fast map, batch 1:     {_summary(both)}")
    print(f"fast map on top of the pass:   {(np.median(both) - np.median(score)) * 1e3:.2f} ms (medians), "
          f"{(np.min(both) - np.min(score)) * 1e3:.2f} ms (minima)")
    print(f"patch map on cached features:  {_summary(alone)}")

    _, fast = detector.score_and_maps([frame])
    weights = normalize_map(fast, fit_pixel_calibration(result.held_out_maps))
    start = time.perf_counter()
    scale = gradient_scale(detector, reference[:10])
    print(f"gradient scale from 10 reference images: {time.perf_counter() - start:.2f} s")
    settings = f"alpha={DEFAULT_ALPHA}, lam={DEFAULT_LAMBDA}, iterations={DEFAULT_ITERATIONS}"
    plain = _times(lambda: gradient_map(detector, [frame], scale=scale), args.gradient_repeats, warmup=1)
    weighted = _times(lambda: gradient_map(detector, [frame], scale=scale, weight_maps=weights),
                      args.gradient_repeats, warmup=0)
    print(f"gradient map ({settings}):          {_summary(plain, 's')}")
    print(f"gradient map, fast-map weighted:      {_summary(weighted, 's')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
