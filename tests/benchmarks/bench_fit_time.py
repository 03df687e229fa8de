"""Fit time on a folder of good images, phase by phase (issue 8's target: 644 images within 20 s).

    python tests/benchmarks/bench_fit_time.py FOLDER [--limit N] [--repeats 2] [--detector fusion]

Times what ``inspector fit`` does after its start-up: reading the images (as the
command reads them), then ``InspectionModel.fit``, split by the progress messages the
fit reports (extracting features, calibrating, fitting the final model, gradient
calibration). Each repeat is a whole fit; the phases of every repeat are printed and
the median total. The target is checked against the median; timings on a shared
machine swing, so run it alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict

import numpy as np

TARGET_S = 20.0


class PhaseClock:
    """A progress callback that sums wall time per progress message (the phase a fit is in)."""

    def __init__(self) -> None:
        self.phases: OrderedDict[str, float] = OrderedDict()
        self._phase, self._since = None, time.perf_counter()

    def __call__(self, done: int, total: int, message: str) -> None:
        phase = message.split(" (")[0] if message else "(unnamed)"
        if phase != self._phase:
            self.stop()
            self._phase = phase

    def stop(self) -> None:
        now = time.perf_counter()
        if self._phase is not None:
            self.phases[self._phase] = self.phases.get(self._phase, 0.0) + now - self._since
        self._since = now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="folder of good images")
    parser.add_argument("--limit", type=int, default=None, help="use the first N images")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--detector", default="fusion")
    parser.add_argument("--no-thread-tuning", action="store_true",
                        help="keep the thread pools' defaults (spinning OpenMP, multi-threaded OpenBLAS)")
    args = parser.parse_args(argv)
    if not args.no_thread_tuning:
        from inspector.core.thread_tuning import tune_threads

        tune_threads()  # as the `inspector` command does, before torch is imported

    from inspector.core.imageio import list_images, read_images
    from inspector.core.malloc_tuning import tune_malloc
    from inspector.core.progress import Progress
    from inspector.pipeline.model import InspectionModel

    tune_malloc()  # as the `inspector` command does
    paths = list_images([args.folder]).images[: args.limit]
    totals = []
    for repeat in range(max(1, args.repeats)):
        started = time.perf_counter()
        images = read_images(paths).images
        read_s = time.perf_counter() - started
        clock = PhaseClock()
        fit_started = time.perf_counter()
        InspectionModel.fit(images, detector=args.detector, progress=Progress(clock))
        clock.stop()
        fit_s = time.perf_counter() - fit_started
        totals.append(read_s + fit_s)
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in clock.phases.items())
        print(f"repeat {repeat + 1}: {len(images)} images, read {read_s:.1f} s, fit {fit_s:.1f} s "
              f"({phases}); total {read_s + fit_s:.1f} s", flush=True)
    total = float(np.median(totals))
    print(f"median total {total:.1f} s for {len(paths)} images (target: 644 images within {TARGET_S:.0f} s)")
    return 0 if total <= TARGET_S or len(paths) < 644 else 1


if __name__ == "__main__":
    sys.exit(main())
