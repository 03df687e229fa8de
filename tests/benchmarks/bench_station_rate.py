"""Frames per second: the pipeline alone against the station, with maps off and with maps always on.

Measured as a new user would see it (issue 10's targets):

- **pipeline alone**: ``InspectionModel.inspect([frame], maps=...)`` on frames preloaded
  in memory, one frame a call on a worker thread, as the station's inspection thread
  calls it (on a loaded machine torch on the main thread can be several times slower:
  its OpenMP team spins against the other processes), with the CLI's malloc tuning;
- **station**: ``inspector gui --model M --source folder:F --quit-after N`` offscreen in a
  subprocess, with a fresh settings file naming the segmentation mode and a fresh
  results database; frames/s from the recorded decision times, and the median recorded
  detection latency.

    python tests/benchmarks/bench_station_rate.py [--model MODEL] [--images FOLDER] [--frames 150]
        [--modes off,fast+gradient] [--repeats 3]

Every measurement is repeated (the runs of the modes interleaved) and the median is
reported, because on a shared machine single runs swing by tens of percent.

Without --model the embedded demo model and its inspection folder are used (built on
first use). Targets: maps always on at least 0.95x of maps off, the station at least
0.8x of the pipeline alone. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MAPS_TARGET = 0.95
STATION_TARGET = 0.8
WARM_UP = 5


def pipeline_rate(model, frames, maps: str | None) -> tuple[float, float]:
    """Frames/s and median ms of one-frame ``inspect`` calls on a worker thread (after a short warm-up)."""
    measured: dict[str, float] = {}

    def work() -> None:
        for frame in frames[:WARM_UP]:
            model.inspect([frame], maps=maps)
        times = []
        started = time.perf_counter()
        for frame in frames:
            begin = time.perf_counter()
            model.inspect([frame], maps=maps)
            times.append((time.perf_counter() - begin) * 1000.0)
        measured.update(rate=len(frames) / (time.perf_counter() - started), median=float(np.median(times)))

    worker = threading.Thread(target=work, name="pipeline-alone")
    worker.start()
    worker.join()
    return measured["rate"], measured["median"]


def station_rate(model_path: str, folder: str, frames: int, mode: str) -> tuple[float, float, int]:
    """Frames/s from the recorded decision times, median recorded latency (ms), and frames recorded."""
    from inspector.storage.settings import Settings, save_settings

    with tempfile.TemporaryDirectory(prefix="station-rate-") as scratch:
        config, data = Path(scratch, "config"), Path(scratch, "data")
        save_settings(Settings(segmentation_mode=mode), config / "settings.json")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", INSPECTOR_CONFIG_DIR=str(config),
                   INSPECTOR_DATA_DIR=str(data))
        command = [sys.executable, "-m", "inspector", "gui", "--model", model_path, "--source", f"folder:{folder}",
                   "--quit-after", str(frames)]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"inspector gui failed ({done.returncode}): {done.stderr[-2000:]}")
        rows = sqlite3.connect(data / "results.sqlite3").execute(
            "SELECT time, latency_ms FROM decisions WHERE error IS NULL ORDER BY id").fetchall()
    stamps = [datetime.fromisoformat(t).timestamp() for t, _ in rows][WARM_UP:]
    latencies = [latency for _, latency in rows][WARM_UP:]
    if len(stamps) < 2:
        raise RuntimeError(f"only {len(rows)} decisions were recorded")
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), float(np.median(latencies)), len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the demo model)")
    parser.add_argument("--images", help="folder of images (default: the demo's inspection folder)")
    parser.add_argument("--frames", type=int, default=150, help="frames per run (at most the folder's images)")
    parser.add_argument("--modes", default="off,fast+gradient",
                        help="segmentation modes of the station runs, comma-separated; the first is the baseline")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (the median is shown)")
    args = parser.parse_args(argv)

    from inspector.core.imageio import list_images, read_image
    from inspector.core.malloc_tuning import tune_malloc
    from inspector.core.records import Frame
    from inspector.pipeline.model import InspectionModel

    tune_malloc()  # as the `inspector` command does

    if args.model:
        model_path, folder = args.model, args.images
    else:
        from inspector.demo import ensure_demo

        path, spec = ensure_demo()
        model_path, folder = str(path), args.images or spec.partition(":")[2]
    if not folder:
        parser.error("--images is needed with --model")
    paths = list_images([folder]).images[: args.frames]
    if len(paths) <= WARM_UP + 1:
        print(f"too few images in {folder}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    images = [read_image(p) for p in paths]
    decode_ms = (time.perf_counter() - started) * 1000.0 / len(images)
    frames = [Frame(image, "bench", i, path=str(p)) for i, (image, p) in enumerate(zip(images, paths))]
    model = InspectionModel.load(model_path)
    print(f"model {model.detector_kind} ({model.backbone}, {model.model_hash[:12]}) on {model.device}; "
          f"{len(frames)} frames of {images[0].shape[1]}x{images[0].shape[0]} from {folder}; "
          f"decoding {decode_ms:.1f} ms a frame")

    fast = "fast" if "fast" in model.supported_segmenters else None
    runs = {None: [], fast: []}
    for _ in range(max(1, args.repeats)):
        for maps in (None, fast):
            runs[maps].append(pipeline_rate(model, frames, maps))
    (alone_off, alone_off_ms), (alone_fast, alone_fast_ms) = (_median_run(runs[None]), _median_run(runs[fast]))
    print(f"pipeline alone, maps off:      {alone_off:6.1f} frames/s  (median {alone_off_ms:.1f} ms a frame)")
    print(f"pipeline alone, fast map each: {alone_fast:6.1f} frames/s  (median {alone_fast_ms:.1f} ms a frame)"
          f"  -> {alone_fast / alone_off:.2f}x of maps off")

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    station_runs: dict[str, list] = {mode: [] for mode in modes}
    for _ in range(max(1, args.repeats)):
        for mode in modes:
            station_runs[mode].append(station_rate(model_path, folder, len(frames), mode))
    station = {}
    for mode in modes:
        rate, latency = _median_run([run[:2] for run in station_runs[mode]])
        count = station_runs[mode][0][2]
        station[mode] = rate
        baseline = alone_fast if mode in ("fast+gradient",) else alone_off
        print(f"station, maps {mode:<14} {rate:6.1f} frames/s  (median recorded latency {latency:.1f} ms, "
              f"{count} decisions)  -> {rate / baseline:.2f}x of the pipeline alone")
    ok = alone_fast / alone_off >= MAPS_TARGET
    if len(modes) > 1:
        ratio = station[modes[-1]] / station[modes[0]]
        print(f"station maps {modes[-1]} / {modes[0]}: {ratio:.2f}x (target >= {MAPS_TARGET})")
        ok = ok and ratio >= MAPS_TARGET
    worst = min(station[m] / (alone_fast if m == "fast+gradient" else alone_off) for m in modes)
    print(f"station / pipeline alone, worst mode: {worst:.2f}x (target >= {STATION_TARGET})")
    return 0 if ok and worst >= STATION_TARGET else 1


def _median_run(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median rate of the runs and the median of their median times."""
    return float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs]))


if __name__ == "__main__":
    sys.exit(main())
