"""Frames per second: the pipeline alone against the station, with maps off and with maps always on.

Measured as a new user would see it (issue 10's targets):

- **pipeline alone**: ``inspect([frame], maps=...)`` of the model as the station loads it
  (``--runtime``, default ``auto``: its exported graph on onnxruntime when parity holds) on frames preloaded
  in memory, one frame a call on a worker thread, as the station's inspection thread
  calls it (on a loaded machine torch on the main thread can be several times slower:
  its OpenMP team spins against the other processes), with the CLI's malloc tuning;
- **station**: ``inspector gui --model M --source folder:F --quit-after N`` offscreen in a
  subprocess, with a fresh settings file naming the segmentation mode and a fresh
  results database; frames/s from the recorded decision times, and the median recorded
  detection latency.

    python tests/benchmarks/bench_station_rate.py [--model MODEL] [--images FOLDER] [--frames 150]
        [--modes off,fast+gradient] [--repeats 3] [--runtime auto]

Every measurement is repeated in rounds (a round runs the pipeline alone and every
station mode back to back); each ratio is computed within a round and the median of
the rounds' ratios is reported with its range, because on a shared machine single runs
swing by tens of percent and the machine's speed drifts between rounds.

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


def station_rate(model_path: str, folder: str, frames: int, mode: str, runtime: str) -> tuple[float, float, int]:
    """Frames/s from the recorded decision times, median recorded latency (ms), and frames recorded."""
    from inspector.storage.settings import Settings, save_settings

    with tempfile.TemporaryDirectory(prefix="station-rate-") as scratch:
        config, data = Path(scratch, "config"), Path(scratch, "data")
        save_settings(Settings(segmentation_mode=mode), config / "settings.json")
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", INSPECTOR_CONFIG_DIR=str(config),
                   INSPECTOR_DATA_DIR=str(data))
        command = [sys.executable, "-m", "inspector", "gui", "--model", model_path, "--source", f"folder:{folder}",
                   "--quit-after", str(frames), "--runtime", runtime]
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
    parser.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx", "openvino"),
                        help="what decides the frames, in the pipeline alone and in the station (as gui --runtime)")
    args = parser.parse_args(argv)

    from inspector.core.thread_tuning import tune_threads

    tune_threads()  # as the `inspector` command (and so the station below) does, before torch loads
    from inspector.core.imageio import list_images, read_image
    from inspector.core.malloc_tuning import tune_malloc
    from inspector.core.opencv_threads import limit_opencv_threads
    from inspector.core.records import Frame
    from inspector.pipeline.model import InspectionModel

    tune_malloc()  # as the `inspector` command does
    limit_opencv_threads()  # as the station does

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
    from inspector.export.accelerated import accelerate

    model, choice = accelerate(InspectionModel.load(model_path), runtime=args.runtime)
    print(f"model {model.detector_kind} ({model.backbone}, {model.model_hash[:12]}) on {model.device}, "
          f"deciding on {choice.runtime}; "
          f"{len(frames)} frames of {images[0].shape[1]}x{images[0].shape[0]} from {folder}; "
          f"decoding {decode_ms:.1f} ms a frame")

    fast = "fast" if "fast" in model.supported_segmenters else None
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    rounds = []
    for number in range(max(1, args.repeats)):
        # One round: the pipeline alone and every station mode back to back, so that each ratio
        # compares runs minutes apart at most (the machine's speed drifts more than that between rounds).
        measured = {"alone off": pipeline_rate(model, frames, None), "alone fast": pipeline_rate(model, frames, fast)}
        for mode in modes:
            measured[mode] = station_rate(model_path, folder, len(frames), mode, args.runtime)
        rounds.append(measured)
        print(f"round {number + 1}: pipeline alone {measured['alone off'][0]:.1f} / {measured['alone fast'][0]:.1f} "
              f"frames/s (maps off / fast map each); station "
              + ", ".join(f"{mode} {measured[mode][0]:.1f}" for mode in modes), flush=True)

    def baseline(mode: str) -> str:
        return "alone fast" if mode == "fast+gradient" else "alone off"

    def ratio(numerator: str, denominator: str) -> tuple[float, float, float]:
        values = [r[numerator][0] / r[denominator][0] for r in rounds]
        return float(np.median(values)), min(values), max(values)

    def rate_line(key: str) -> str:
        rate, median_ms = _median_run([r[key][:2] for r in rounds])
        return f"{rate:6.1f} frames/s (median {median_ms:.1f} ms a frame)"

    print(f"pipeline alone, maps off:      {rate_line('alone off')}")
    maps_alone = ratio("alone fast", "alone off")
    print(f"pipeline alone, fast map each: {rate_line('alone fast')}  -> {_ratio_text(maps_alone)} of maps off")
    worst = float("inf")
    for mode in modes:
        share = ratio(mode, baseline(mode))
        worst = min(worst, share[0])
        print(f"station, maps {mode:<14} {rate_line(mode)}, {rounds[0][mode][2]} decisions"
              f"  -> {_ratio_text(share)} of the pipeline alone")
    ok = maps_alone[0] >= MAPS_TARGET
    if len(modes) > 1:
        maps_station = ratio(modes[-1], modes[0])
        print(f"station maps {modes[-1]} / {modes[0]}: {_ratio_text(maps_station)} (target >= {MAPS_TARGET})")
        ok = ok and maps_station[0] >= MAPS_TARGET
    print(f"station / pipeline alone, worst mode: {worst:.2f}x (target >= {STATION_TARGET})")
    print("ratios: median of the rounds' ratios [lowest-highest]; rates: median of the rounds")
    return 0 if ok and worst >= STATION_TARGET else 1


def _ratio_text(ratio: tuple[float, float, float]) -> str:
    return f"{ratio[0]:.2f}x [{ratio[1]:.2f}-{ratio[2]:.2f}]"


def _median_run(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median rate of the runs and the median of their median times."""
    return float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs]))


if __name__ == "__main__":
    sys.exit(main())
