"""``inspector benchmark``: image AUROC, F1 and speed (and maps) on an MVTec-AD-layout dataset."""

from __future__ import annotations

import json

from inspector.catalog import DEFAULT_DETECTOR
from inspector.cli.common import RUNTIMES, add_device, add_quiet, image_size
from inspector.cli.progress_bar import progress_bar

HELP = "fit on ROOT/train/good and evaluate on ROOT/test (one MVTec-AD category or a folder of them)"

COLUMNS = [("image_auroc", "img AUROC", "{:.3f}"), ("f1", "F1", "{:.3f}"), ("escape", "escape", "{:.1%}"),
           ("frr", "FRR", "{:.1%}"), ("pixel_auroc", "px AUROC", "{:.3f}"),
           ("aupro", "AUPRO", "{:.3f}"), ("fit_s", "fit s", "{:.1f}"), ("ms_per_image", "ms/img", "{:.1f}"),
           ("images_per_s", "img/s", "{:.1f}"), ("ms_per_map", "ms/map", "{:.0f}"), ("runtime", "runtime", " {}")]


def add_arguments(parser) -> None:
    """Arguments of ``inspector benchmark``."""
    from inspector.detectors.base import detector_kinds
    from inspector.pipeline.maps import SEGMENTERS

    kinds = detector_kinds()
    parser.add_argument("root", metavar="ROOT")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--detector", nargs="+", default=[DEFAULT_DETECTOR], metavar="KIND",
                        choices=kinds, help="one or more of " + ", ".join(kinds) + " (several give a comparison)")
    parser.add_argument("--segmenter", choices=tuple(SEGMENTERS), help="also measure pixel AUROC and AUPRO")
    from inspector.backbones.efficientnet import BACKBONE_NAMES

    parser.add_argument("--image-size", type=image_size, metavar="N", help="network input size, 32 to 1024")
    parser.add_argument("--backbone", default="lite0", choices=BACKBONE_NAMES)
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="what scores the test images once a model is fitted: auto (default: its exported graph "
                             "on onnxruntime when that passes parity, else torch), torch, onnx or openvino (that "
                             "engine, exported into a temporary folder)")
    add_device(parser)
    add_quiet(parser)


def run(args) -> int:
    """Run the benchmark and print a table or JSON."""
    from inspector.evaluation.benchmark import benchmark

    with progress_bar(args.quiet, "benchmark") as progress:
        report = benchmark(args.root, detectors=args.detector, segmenter=args.segmenter,
                           image_size=args.image_size, backbone=args.backbone, progress=progress,
                           device=args.device, runtime=args.runtime)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
    return 0


def format_table(report: dict) -> str:
    """A plain-text table: one row per detector and category, plus means."""
    present = [c for c in COLUMNS if any(c[0] in m for d in report["detectors"].values()
                                         for m in d["categories"].values())]
    header = f"{'detector':<10}{'category':<14}" + "".join(f"{title:>11}" for _, title, _ in present)
    lines = [header, "-" * len(header)]
    for kind, data in report["detectors"].items():
        rows = list(data["categories"].items()) + [("mean", data["mean"])]
        for name, metrics in rows:
            cells = "".join(f"{fmt.format(metrics[key]) if metrics.get(key) is not None else '-':>11}" for key, _, fmt in present)
            lines.append(f"{kind:<10}{name:<14}{cells}")
    lines += _rate_lines(report)
    lines += _by_type_lines(report)
    reasons = sorted({f"{kind}: runtime torch: {m['runtime_reason']}" for kind, d in report["detectors"].items()
                      for m in d["categories"].values() if m.get("runtime_reason")})
    lines += ["", *reasons] if reasons else []
    return "\n".join(lines)


def _rate_lines(report: dict) -> list[str]:
    """Per category: escapes and false rejects as counts with their 95 % intervals, and the FRR the model showed."""
    lines = []
    for kind, data in report["detectors"].items():
        for name, metrics in data["categories"].items():
            parts = []
            for key, what in (("escape", "escapes"), ("frr", "false rejects")):
                if metrics.get(f"{key}_count"):
                    (count, total), (low, high) = metrics[f"{key}_count"], metrics[f"{key}_interval"]
                    parts.append(f"{what} {count} of {total} ({count / total:.1%}, 95% interval {low:.1%}-{high:.1%})")
            if metrics.get("frr_shown_max") is not None:
                parts.append(f"FRR shown at most {metrics['frr_shown_max']:.1%}")
            if parts:
                lines.append(f"{kind} {name}: " + "; ".join(parts))
    return ["", *lines] if lines else []


def _by_type_lines(report: dict) -> list[str]:
    """Per defect type: escapes at the default threshold (and pixel AUROC where masks exist)."""
    lines = []
    for kind, data in report["detectors"].items():
        for name, metrics in data["categories"].items():
            by_type = metrics.get("by_type") or {}
            if not by_type:
                continue
            parts = []
            for defect, row in by_type.items():
                pixel = f", px {row['pixel_auroc']:.3f}" if "pixel_auroc" in row else ""
                parts.append(f"{defect} {row['escape']:.0%} of {row['n']}{pixel}")
            lines.append(f"{kind} {name}: escapes by type: " + "; ".join(parts))
    return ["", *lines] if lines else []
