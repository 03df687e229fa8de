"""Overlay rendering speed for a 640x480 frame, in ms (target: at most 5 ms).

    python tests/benchmarks/bench_overlay_speed.py [--width 640] [--height 480] [--repeats 300] [--no-malloc-tuning]

Two maps are timed: a typical flagged frame (mostly quiet, two hot spots, map at
the model's 224x224 input size so the resize to the frame is included) and the
worst case (the whole frame above the blend floor, with many contours). Prints
the median and 95th percentile; exits 1 when the median misses the target.

Like ``inspector speed``, it first applies :func:`inspector.core.malloc_tuning.tune_malloc`:
with glibc's defaults every frame-sized temporary is a fresh mmap whose pages
fault in on first touch, which roughly triples the time (see ``--no-malloc-tuning``).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from inspector.core.malloc_tuning import tune_malloc
from inspector.segmentation.overlay import render_overlay

TARGET_MS = 5.0


def _maps(size: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    typical = (0.15 + 1.6 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.4) ** 2) / 0.004)
               + 0.8 * np.exp(-((xx - 0.7) ** 2 + (yy - 0.7) ** 2) / 0.01))
    worst = 1.0 + 0.6 * np.sin(40 * xx) * np.sin(40 * yy)
    return {"typical": typical.astype(np.float32), "worst": worst.astype(np.float32)}


def _time(fn, repeats: int) -> np.ndarray:
    for _ in range(10):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return times * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--map-size", type=int, default=224, help="side of the square map (224 = Lite0 input)")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's allocation defaults")
    args = parser.parse_args(argv)
    tuned = False if args.no_malloc_tuning else tune_malloc()
    print(f"malloc tuning: {'on' if tuned else 'off'}")

    frame = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    worst_median = 0.0
    for name, values in _maps(args.map_size).items():
        times = _time(lambda v=values: render_overlay(frame, v), args.repeats)
        median, p95 = float(np.median(times)), float(np.percentile(times, 95))
        worst_median = max(worst_median, median)
        print(f"overlay {args.width}x{args.height} ({name} map {args.map_size}x{args.map_size}): "
              f"median {median:.2f} ms, p95 {p95:.2f} ms")
    ok = worst_median <= TARGET_MS
    print(f"target {TARGET_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
