"""GUI responsiveness while inspecting a live source: the longest event-loop stall, in ms.

A 10 ms heartbeat QTimer runs on the GUI thread while the station inspects a
fake live camera (30 frames/s of real images, through the real CameraSource
and capture thread) with a real model. Every gap between heartbeats longer
than the interval is a stall of the GUI event loop. Target: under 50 ms.

    python tests/benchmarks/bench_gui_latency.py [--model MODEL] [--seconds 10] [--segmentation fast]

Without --model the embedded demo model is used (built on first use). Exits 1
when the target is missed. Runs offscreen unless QT_QPA_PLATFORM says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

TARGET_MS = 50.0
HEARTBEAT_MS = 10


class SyntheticCamera:
    """A cv2.VideoCapture stand-in: cycles through images at ``fps`` (BGR, like OpenCV)."""

    def __init__(self, images: list[np.ndarray], fps: float = 30.0) -> None:
        self.images = [np.ascontiguousarray(image[:, :, ::-1]) for image in images]
        self.period = 1.0 / fps
        self.count = 0
        self.next_time = time.monotonic()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        delay = self.next_time - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next_time = max(self.next_time + self.period, time.monotonic())
        self.count += 1
        return True, self.images[self.count % len(self.images)]

    def release(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model file (default: the demo model)")
    parser.add_argument("--images", help="folder of images the fake camera shows (default: the demo's)")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to measure")
    parser.add_argument("--fps", type=float, default=30.0, help="fake camera frame rate")
    parser.add_argument("--segmentation", default="fast", choices=("off", "fast", "gradient", "fast+gradient"))
    args = parser.parse_args(argv)

    from inspector.core.imageio import list_images, read_image
    from inspector.demo import ensure_demo
    from inspector.gui.main_window import MainWindow
    from inspector.gui.theme import apply_theme
    from inspector.sources.camera import CameraSource
    from inspector.storage.settings import Settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder

    model_path, demo_source = (args.model, None) if args.model else ensure_demo()
    folder = args.images or str(demo_source).partition(":")[2]
    images = [read_image(p) for p in list_images([folder]).images[:40]]
    if not images:
        print(f"no images in {folder}", file=sys.stderr)
        return 2

    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_theme(app)
    camera = SyntheticCamera(images, args.fps)
    station = Station(StoreHolder(os.path.join(os.environ.get("TMPDIR", "/tmp"), "gui_latency.sqlite3")),
                      source_factory=lambda spec: CameraSource(0, capture_factory=lambda: camera),
                      segmentation_mode=args.segmentation)
    window = MainWindow(station, Settings())
    window.show()

    gaps: list[float] = []
    clock = QElapsedTimer()
    results = []
    measuring = {"on": False}
    done = {"measured": 0}

    def beat() -> None:
        if measuring["on"]:
            gaps.append(clock.nsecsElapsed() / 1e6)
        clock.restart()

    def on_result(result) -> None:
        results.append(result.latency_ms)
        if not measuring["on"] and len(results) >= 5 and not done["measured"]:  # warm-up over: measure
            measuring["on"] = True
            clock.restart()
            QTimer.singleShot(int(args.seconds * 1000), finish)

    def finish() -> None:
        # Stop measuring first: closing waits for the workers, which is not inspection.
        measuring["on"] = False
        done["measured"] = len(results)
        window.close()

    heartbeat = QTimer()
    heartbeat.setInterval(HEARTBEAT_MS)
    heartbeat.timeout.connect(beat)
    station.model_changed.connect(lambda *_: window.open_source("camera:0", start=True))
    collector = _Collector(on_result)
    station.inspection.result_ready.connect(collector.take)
    station.message.connect(lambda m: print(f"  {m}", file=sys.stderr))
    QTimer.singleShot(int((args.seconds + 120) * 1000), window.close)  # never hang
    heartbeat.start()
    clock.start()
    station.load_model(str(model_path))
    app.exec()
    heartbeat.stop()

    measured = (done["measured"] or len(results)) - 5
    if not gaps or measured <= 0:
        print("no frames were inspected", file=sys.stderr)
        return 2
    worst = max(gaps) - HEARTBEAT_MS
    print(f"frames inspected: {measured} in {args.seconds:.0f} s ({measured / args.seconds:.1f} frames/s), "
          f"detection latency median {np.median(results[5:]):.0f} ms, segmentation {args.segmentation}")
    print(f"segmentation maps: {station.segmentation.done} computed, {station.segmentation.dropped} dropped "
          "(bounded queue keeps the newest)")
    print(f"heartbeats: {len(gaps)} at {HEARTBEAT_MS} ms; gap p99 {np.percentile(gaps, 99):.1f} ms")
    print(f"max GUI event-loop stall: {worst:.1f} ms (target < {TARGET_MS:.0f} ms)")
    return 0 if worst < TARGET_MS else 1


class _Collector:
    """Receives worker signals on the GUI thread (a plain lambda would run on the worker's thread)."""

    def __init__(self, callback) -> None:
        from PySide6.QtCore import QObject

        class Receiver(QObject):
            def take(self, result) -> None:
                callback(result)

        self._receiver = Receiver()
        self.take = self._receiver.take


if __name__ == "__main__":
    sys.exit(main())
