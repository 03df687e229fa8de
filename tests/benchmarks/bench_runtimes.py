"""torch vs onnxruntime vs OpenVINO, side by side in one process: batch-1 latency and batch-16 throughput, fast map on.

    python tests/benchmarks/bench_runtimes.py [--model MODEL.safetensors] [--threads N] [--repeats 40]
                                              [--references 40] [--image-size N] [--no-malloc-tuning]

Without ``--model`` a ``fusion`` model (the default detector, Lite0) is fitted on
real ELPV solar-cell images (the ``elpv_dataset`` package) and exported to a
temporary ONNX file. Every runtime decides the same real frames (300x300, so each
path resizes them to the model's input) through its ``inspect(frames, maps="fast")``:
the torch facade :class:`inspector.pipeline.model.InspectionModel`,
:class:`inspector.export.onnx_runtime.OnnxModel` with several session settings,
:class:`inspector.export.openvino_runtime.OpenVinoModel` (when openvino is installed) and
the station's own :class:`inspector.export.accelerated.AcceleratedModel` (what ``--runtime
auto`` gives a ``.safetensors`` model). Every runtime's raw scores and verdicts on the 16
frames are compared with torch's first (the "parity" column).

Batch 1: one frame per call, the runtimes interleaved call by call (rotating which goes
first), so that a change of machine load hits all of them alike; the median and the
minimum per runtime are printed. Batch 16: 16 frames per call, interleaved likewise,
images per second from the median call. ``--threads`` sets torch's threads and
onnxruntime's intra-op threads alike. Like ``inspector speed``, glibc's heap is tuned
first unless ``--no-malloc-tuning``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from inspector.core.imageio import read_image
from inspector.core.malloc_tuning import tune_malloc
from inspector.core.records import Frame
from inspector.evaluation.speed import interleaved_ms as _interleaved
from inspector.export.accelerated import accelerate
from inspector.export.onnx_export import export_onnx
from inspector.export.onnx_runtime import OnnxModel
from inspector.export.openvino_runtime import OpenVinoModel, openvino_available
from inspector.pipeline.model import InspectionModel


def _elpv_images(count: int, offset: int = 0) -> list[np.ndarray]:
    from inspector.datasets.elpv import load_cells

    cells = sorted((c for c in load_cells() if c.cell_type == "mono" and c.good), key=lambda c: c.path.name)
    order = np.random.default_rng(0).permutation(len(cells))
    return [read_image(cells[i].path) for i in order[offset:offset + count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a fitted fusion/gaussian model file (default: fit one on ELPV)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--references", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--no-malloc-tuning", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_malloc_tuning:
        tune_malloc()
    torch.set_num_threads(args.threads)
    if args.model:
        model = InspectionModel.load(args.model, device="cpu")
    else:
        model = InspectionModel.fit(_elpv_images(args.references), image_size=args.image_size, folds=5, device="cpu")
    frames = [Frame(image, "bench", i) for i, image in enumerate(_elpv_images(16, offset=args.references))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, path)
        runtimes = {
            "torch (InspectionModel)": model,
            "onnxruntime ORT_ENABLE_ALL": OnnxModel(path, ["CPUExecutionProvider"], args.threads, "all"),
            "onnxruntime ORT_ENABLE_EXTENDED": OnnxModel(path, ["CPUExecutionProvider"], args.threads, "extended"),
            "onnxruntime ORT_DISABLE_ALL": OnnxModel(path, ["CPUExecutionProvider"], args.threads, "none"),
        }
        if openvino_available():
            runtimes["OpenVINO CPU, LATENCY hint"] = OpenVinoModel(path, args.threads, "LATENCY")
            runtimes["OpenVINO CPU, THROUGHPUT hint"] = OpenVinoModel(path, args.threads, "THROUGHPUT")
        else:
            print("openvino is not installed: no OpenVINO rows (pip install 'inspector[openvino]')", file=sys.stderr)
        station, choice = accelerate(model, "auto", threads=args.threads, cache=False)
        runtimes[f"station, --runtime auto ({choice.runtime})"] = station
        expected = model.inspect(frames)
        parity = {}
        for name, runtime in runtimes.items():
            got = runtime.inspect(frames)
            worst = max(abs(a.raw_score - b.raw_score) / abs(b.raw_score) for a, b in zip(got, expected))
            same = [a.anomalous for a in got] == [b.anomalous for b in expected]
            parity[name] = f"{worst:.0e}" + ("" if same else " VERDICTS DIFFER")
        runners = {name: (lambda fs, m=m: m.inspect(fs, maps="fast")) for name, m in runtimes.items()}
        single = _interleaved(runners, frames[:1], args.repeats)
        batched = _interleaved(runners, frames, max(5, args.repeats // 5))
    load = os.getloadavg()
    print(f"model: {model.detector_kind} on {model.backbone}, input {model.detector.preprocessing.image_size} px, "
          f"frames 300x300 (resized in each path), fast map on; threads {args.threads}; "
          f"load average {load[0]:.2f} {load[1]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'runtime':40s} {'batch 1 median':>15s} {'batch 1 min':>12s} {'batch 16':>14s} {'speed-up b1':>12s} "
          f"{'parity':>8s}")
    base = statistics.median(single["torch (InspectionModel)"])
    for name in runtimes:
        median, best = statistics.median(single[name]), min(single[name])
        rate = 16 * 1000.0 / statistics.median(batched[name])
        print(f"{name:40s} {median:12.1f} ms {best:9.1f} ms {rate:9.1f} img/s {base / median:11.2f}x "
              f"{parity[name]:>8s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
