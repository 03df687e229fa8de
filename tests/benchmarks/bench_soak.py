"""Soak: the offscreen station over many frames; RSS, threads and open files at start, middle and end.

The real station (window, workers, results database with its journal, NG images,
fast-map overlays) inspects a folder of a few real images that is read again and
again from disk (a looping folder source), with the real model facade. Without
``--model`` the detector is the cheap registered BrightnessDetector of
``tests/gui/gui_stubs.py`` so that 10,000 frames take minutes; ``--model PATH``
uses a real model file (e.g. a Lite0 one).

    python tests/benchmarks/bench_soak.py [--frames 10000] [--model MODEL] [--images DIR]

Targets (issue 11): RSS growth from start (after a warm-up) to end under 50 MB,
thread count and open file descriptors flat. Exits 1 when a target is missed.
Reads /proc/self (Linux).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QObject, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RSS_TARGET_MB = 50.0
WARM_UP = 200


def sample() -> dict:
    """RSS (MB), thread count and open file descriptors of this process, from /proc/self."""
    rss_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
    return {"rss_mb": rss_kb / 1024.0, "threads": len(os.listdir("/proc/self/task")),
            "fds": len(os.listdir("/proc/self/fd"))}


def make_images(folder: Path, source: Path | None) -> Path:
    """A few real images: the given folder's, else tests/data/chelsea.png in four crops and levels."""
    if source is not None:
        return source
    import cv2

    from inspector.core.imageio import read_image, write_image

    chelsea = read_image(REPO / "tests" / "data" / "chelsea.png")
    folder.mkdir(parents=True, exist_ok=True)
    for i, gain in enumerate((0.5, 0.8, 1.0, 1.3)):
        crop = chelsea[i * 20 : i * 20 + 256, i * 30 : i * 30 + 256]
        image = cv2.convertScaleAbs(cv2.resize(crop, (128, 128)), alpha=gain)
        write_image(folder / f"part_{i}.png", image)
    return folder


def looping_folder(path: str):
    """A FolderSource that starts over when it reaches the end (a source that never finishes)."""
    from inspector.sources.folder import FolderSource

    class LoopingFolderSource(FolderSource):
        def __init__(self, folder: str) -> None:
            super().__init__(folder)
            self._lap = 0

        @property
        def finished(self) -> bool:
            return False

        def read(self, timeout: float | None = None):
            frame = super().read(timeout)
            if frame is None:
                self._lap += 1
                super().open()  # list the folder again and read every file from disk again
                frame = super().read(timeout)
            if frame is None:
                return None
            from dataclasses import replace

            self.take_content_hash(frame)  # the worker takes it by (frame id, path); keep the ids unique
            return replace(frame, frame_id=self._lap * 100000 + frame.frame_id)

    return LoopingFolderSource(path)


class Soak(QObject):
    """Counts results and takes the samples; closes the window after ``frames``."""

    def __init__(self, window, frames: int) -> None:
        super().__init__()
        self.window, self.frames, self.count = window, frames, 0
        self.samples: list[tuple[str, int, dict]] = []
        self.started = time.monotonic()

    def on_result(self, _result) -> None:
        self.count += 1
        if self.count == WARM_UP:
            self.samples.append(("start", self.count, sample()))
            self.started = time.monotonic()
        elif self.count == WARM_UP + (self.frames - WARM_UP) // 2:
            self.samples.append(("middle", self.count, sample()))
        elif self.count == self.frames:
            self.samples.append(("end", self.count, sample()))
            QTimer.singleShot(0, self.window.close)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=10000, help="frames to inspect (default 10000)")
    parser.add_argument("--model", help="a model file (default: the stub brightness detector)")
    parser.add_argument("--images", type=Path, help="folder of images to loop over (default: crops of chelsea.png)")
    parser.add_argument("--segmentation", default="fast", choices=("off", "fast", "gradient", "fast+gradient"))
    args = parser.parse_args(argv)
    if args.frames <= WARM_UP + 10:
        parser.error(f"--frames must be more than {WARM_UP + 10}")

    work = Path(tempfile.mkdtemp(prefix="inspector-soak-"))
    os.environ.setdefault("INSPECTOR_CONFIG_DIR", str(work / "config"))
    os.environ.setdefault("INSPECTOR_DATA_DIR", str(work / "data"))
    from inspector.gui.main_window import MainWindow
    from inspector.storage.settings import Settings
    from inspector.workers.station import Station
    from inspector.workers.store_holder import StoreHolder

    folder = make_images(work / "images", args.images)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    db = work / "results.sqlite3"
    station = Station(StoreHolder(db), source_factory=lambda spec: looping_folder(spec.partition(":")[2]),
                      segmentation_mode=args.segmentation)
    window = MainWindow(station, Settings())
    window.show()
    soak = Soak(window, args.frames)
    station.inspection.result_ready.connect(soak.on_result)
    station.message.connect(lambda m: None)
    station.model_changed.connect(lambda *_: window.open_source(f"folder:{folder}", start=True))
    before = sample()
    if args.model:
        station.load_model(args.model)
    else:
        sys.path.insert(0, str(REPO / "tests" / "gui"))
        from gui_stubs import stub_model

        station.set_model(stub_model(threshold=0.45), "")  # the brightest crop is NG (about a quarter of the frames)
    QTimer.singleShot(3600 * 1000, window.close)  # never hang
    app.exec()
    elapsed = time.monotonic() - soak.started
    after_close = sample()

    from inspector.storage.results_db import ResultStore

    with ResultStore(db) as store:
        rows, ng = store.count(), len(store.query(limit=None, verdict="NG"))
    shutil.rmtree(work, ignore_errors=True)
    print(f"before the model: rss {before['rss_mb']:.1f} MB, threads {before['threads']}, fds {before['fds']}")
    for name, count, values in soak.samples:
        print(f"{name:>6} (frame {count:>6}): rss {values['rss_mb']:.1f} MB, threads {values['threads']}, "
              f"fds {values['fds']}")
    print(f"after close: rss {after_close['rss_mb']:.1f} MB, threads {after_close['threads']}, "
          f"fds {after_close['fds']}")
    if len(soak.samples) < 3:
        print(f"only {soak.count} of {args.frames} frames were inspected", file=sys.stderr)
        return 2
    start, end = soak.samples[0][2], soak.samples[-1][2]
    growth = end["rss_mb"] - start["rss_mb"]
    print(f"frames {soak.count} in {elapsed:.0f} s after warm-up ({(soak.count - WARM_UP) / elapsed:.0f} frames/s); "
          f"rows recorded {rows} ({ng} NG with images), journal waiting "
          f"{station.recorder.state.waiting if station.recorder else 0}")
    ok = growth < RSS_TARGET_MB and end["threads"] <= start["threads"] and end["fds"] <= start["fds"]
    print(f"RSS growth {growth:+.1f} MB (target < {RSS_TARGET_MB:.0f} MB); threads {start['threads']} -> "
          f"{end['threads']}; fds {start['fds']} -> {end['fds']}: {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
