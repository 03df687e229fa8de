"""``inspector speed``: latency, throughput and overhead over the bare backbone; fit time; file size."""

from __future__ import annotations

import json
import os
import time

from inspector.cli.common import (RUNTIMES, add_device, add_quiet, image_size, int_at_least, load_folder,
                                  positive_int)
from inspector.cli.progress_bar import progress_bar

HELP = "measure detection speed against the bare backbone forward pass, fit time and model size"


def add_arguments(parser) -> None:
    """Arguments of ``inspector speed``."""
    parser.add_argument("images", metavar="DIR", nargs="?",
                        help="folder of good images to fit on and run (default: generated demo textures)")
    from inspector.backbones.efficientnet import BACKBONE_NAMES
    from inspector.detectors.gaussian import MIN_IMAGES

    parser.add_argument("--backbone", default="lite0", choices=BACKBONE_NAMES)
    parser.add_argument("--image-size", type=image_size, metavar="N",
                        help="network input size, 32 to 1024 (default: the detector's own, 256 px on Lite0)")
    parser.add_argument("--fit-images", type=int_at_least(MIN_IMAGES), default=200, metavar="N",
                        help=f"images to fit on, at least {MIN_IMAGES} (default 200)")
    parser.add_argument("--repeats", type=positive_int, default=30, metavar="N")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="runtimes timed side by side with torch, interleaved, on inspect() with the fast map: "
                             "auto (default: onnxruntime and OpenVINO where installed), onnx, openvino, or torch "
                             "(torch only)")
    add_device(parser)
    add_quiet(parser)


def run(args) -> int:
    """Fit on ``--fit-images`` images, then time detection and the bare backbone."""
    # Applied at start-up by inspector.cli.main; INSPECTOR_MALLOC_TUNING=0 measures glibc's defaults.
    tuned = os.environ.get("INSPECTOR_MALLOC_TUNING", "1") != "0"
    import torch

    from inspector.pipeline.model import InspectionModel
    from inspector.evaluation.speed import measure_speed, model_file_mb

    with progress_bar(args.quiet, "speed") as progress:
        images = _images(args, progress)
        started = time.perf_counter()
        model = InspectionModel.fit(images, backbone=args.backbone, image_size=args.image_size,
                                    progress=progress, device=args.device)
        fit_s = time.perf_counter() - started
    figures = measure_speed(model, images, repeats=args.repeats)
    figures.update(fit_s=fit_s, fit_images=len(images), model_mb=model_file_mb(model), malloc_tuned=tuned,
                   threads=torch.get_num_threads(), device=str(model.device),
                   image_size=model.detector.preprocessing.image_size,
                   backbone=args.backbone)
    if args.runtime != "torch":
        figures["runtimes"] = _runtimes(model, images, args)
    if args.format == "json":
        print(json.dumps(_rounded(figures), indent=2))
        return 0
    size = figures["image_size"]
    print(f"backbone {args.backbone} at {size}x{size} on {figures['device']}, "
          f"{figures['threads']} threads, malloc tuning {'on' if tuned else 'off'}")
    print(f"single frame:  detection {figures['detect_ms']:6.1f} ms ({figures['fps_single']:.1f} frames/s), "
          f"bare backbone {figures.get('backbone_ms', float('nan')):6.1f} ms, "
          f"overhead {100 * (figures.get('overhead_ratio', float('nan')) - 1):+.1f}%")
    print(f"batch of 16:   detection {figures['images_per_s_batched']:6.1f} images/s, "
          f"bare backbone {figures.get('backbone_batch_ms', float('nan')):6.1f} ms/batch, "
          f"overhead {100 * (figures.get('batch_overhead_ratio', float('nan')) - 1):+.1f}%")
    if "detect_with_fast_map_ms" in figures:
        print(f"with fast map: {figures['detect_with_fast_map_ms']:6.1f} ms per frame")
    print(f"fit:           {fit_s:6.1f} s on {len(images)} images (incl. k-fold calibration)")
    print(f"model file:    {figures['model_mb']:6.1f} MB")
    if "runtimes" in figures:
        print(format_runtimes(figures["runtimes"]))
    return 0


def _rounded(value):
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _runtimes(model, images, args) -> dict:
    """The runtimes of ``--runtime`` timed side by side with torch (``inspect`` with the fast map)."""
    from inspector.core.records import Frame
    from inspector.evaluation.speed import RUNTIME_ORDER, measure_runtimes

    wanted = RUNTIME_ORDER if args.runtime == "auto" else ("torch", args.runtime)
    frames = [Frame(image, "speed", index) for index, image in enumerate(images[:16])]
    return measure_runtimes(model, frames, wanted, repeats=args.repeats)


def format_runtimes(runtimes: dict) -> str:
    """The side-by-side table of :func:`inspector.evaluation.speed.measure_runtimes`."""
    lines = ["runtimes, interleaved in this process (inspect() with the fast map):",
             f"  {'runtime':<12} {'batch 1 median':>15} {'batch 1 min':>12} {'batch 16':>14} {'vs torch':>9}"]
    for name, row in runtimes.items():
        if "batch1_ms" not in row:
            lines.append(f"  {name:<12} not timed: {row['reason']}")
            continue
        speedup = f"{row['speedup']:.2f}x" if row.get("speedup") else "-"
        lines.append(f"  {name:<12} {row['batch1_ms']:12.1f} ms {row['batch1_min_ms']:9.1f} ms "
                     f"{row['batch_images_per_s']:9.1f} img/s {speedup:>9}")
    return "\n".join(lines)


def _images(args, progress):
    if args.images:
        images = load_folder([args.images], progress, "good").images
    else:
        import tempfile

        from inspector.datasets.synthetic import available_categories, generate_dataset
        from inspector.detectors.fusion import MIN_IMAGE_SIZE

        with tempfile.TemporaryDirectory() as folder:
            category = available_categories()[0]
            root = generate_dataset(folder, categories=[category], image_size=args.image_size or MIN_IMAGE_SIZE,
                                    n_train=args.fit_images, n_test_good=1, n_test_defect_per_type=0)
            images = load_folder([root / category / "train" / "good"], progress, "good").images
    if len(images) < args.fit_images:
        images = [images[i % len(images)] for i in range(args.fit_images)]
    return images[:args.fit_images]
