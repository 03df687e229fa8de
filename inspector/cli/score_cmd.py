"""``inspector score``: score image files and folders with a model file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from inspector.cli.common import (
    add_device,
    add_quiet,
    finite_float,
    fraction,
    load_model,
    output_folder,
    positive_int,
    report_skipped,
)
from inspector.cli.output import RecordWriter
from inspector.cli.progress_bar import progress_bar
from inspector.core.imageio import ImageReadError, list_images, read_image, write_image

HELP = "score images (files or folders, recursive); exit 0 whatever the verdicts"


def add_arguments(parser) -> None:
    """Arguments of ``inspector score``."""
    from inspector.cli.sign_cmd import add_trusted_key
    from inspector.pipeline.maps import SEGMENTERS

    add_trusted_key(parser)

    parser.add_argument("model", metavar="MODEL", help="model file written by `inspector fit`")
    parser.add_argument("paths", metavar="PATH", nargs="+", help="image files or folders")
    parser.add_argument("--format", choices=("table", "jsonl", "csv"), default="table")
    parser.add_argument("--threshold", type=finite_float, help="raw threshold instead of the calibrated one")
    parser.add_argument("--heatmaps", metavar="OUT_DIR", help="write overlay PNGs and maps of anomalous images here")
    parser.add_argument("--segmenter", choices=tuple(SEGMENTERS), default="fast",
                        help="map method: " + "; ".join(f"{k}: {v[1]}" for k, v in SEGMENTERS.items())
                        + " (default fast)")
    parser.add_argument("--all", action="store_true", help="with --heatmaps: maps for every image, not only NG")
    parser.add_argument("--opacity", type=fraction, default=0.5, help="heatmap opacity in overlays (default 0.5)")
    parser.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                        help="images per forward pass (default 16)")
    parser.add_argument("--no-recursive", action="store_true", help="do not descend into sub-folders")
    add_device(parser)
    add_quiet(parser)


def run(args) -> int:
    """Score every image; one record per image, errors included, in input order."""
    from inspector.core.policy import Threshold

    out_dir = output_folder(args.heatmaps, "--heatmaps") if args.heatmaps else None
    model = load_model(args.model, args.device, args=args)
    threshold = Threshold(args.threshold) if args.threshold is not None else model.decision
    if args.heatmaps and args.segmenter not in model.supported_segmenters:
        raise ValueError(f"this model has no {args.segmenter!r} map (available: "
                         f"{', '.join(model.supported_segmenters) or 'none'})")
    listing = list_images(args.paths, recursive=not args.no_recursive)
    writer = RecordWriter(args.format)
    args.used_stems = set()
    counts = {"OK": 0, "NG": 0, "error": 0}
    with progress_bar(args.quiet, "score") as progress:
        total = len(listing.images)
        for start in range(0, total, args.batch_size):
            chunk = listing.images[start:start + args.batch_size]
            for record in _score_chunk(model, chunk, threshold, out_dir, args):
                counts["error" if "error" in record else ("NG" if record["anomalous"] else "OK")] += 1
                writer.write(record)
            progress.update(min(start + len(chunk), total), total, "scoring images")
    report_skipped(listing.skipped, [], listing.problems)
    print(f"inspector: {counts['OK']} OK, {counts['NG']} NG, {counts['error']} unreadable "
          f"(threshold {threshold.raw:.4f} raw)", file=sys.stderr)
    return 0


def _score_chunk(model, paths, threshold, out_dir, args):
    """Records of one chunk: the pipeline decides each readable image (with its fast map when asked)."""
    from inspector.core.records import Frame

    frames, records = [], []
    for path in paths:
        try:
            frames.append(Frame(read_image(path), "cli", len(frames), path=str(path)))
            records.append({"path": str(path)})
        except ImageReadError as exc:
            records.append({"path": str(path), "error": str(exc)})
    readable = [r for r in records if "error" not in r]
    if frames:
        # The fast map (for the overlays, or to weight the gradient map) comes from the scoring pass.
        maps = "fast" if out_dir is not None and "fast" in model.supported_segmenters else None
        results = model.inspect(frames, maps=maps, threshold=threshold, maps_on="all" if args.all else "ng")
        for record, result in zip(readable, results):
            record.update(score=round(result.score, 6), raw_score=round(result.raw_score, 6),
                          anomalous=result.anomalous, threshold=round(result.threshold, 6))
        if out_dir is not None:
            _write_heatmaps(model, results, readable, out_dir, args)
    return records


def _write_heatmaps(model, results, records, out_dir: Path, args) -> None:
    from inspector.segmentation.overlay import render_overlay

    wanted = [i for i, result in enumerate(results) if args.all or result.anomalous]
    if not wanted:
        return
    if args.segmenter == "fast":
        heatmaps = [results[i].heatmap for i in wanted]
    else:
        fast = [results[i].heatmap for i in wanted]
        heatmaps = model.heatmaps([results[i].frame.image for i in wanted], method=args.segmenter,
                                  fast=fast if all(h is not None for h in fast) else None)
    for index, heatmap in zip(wanted, heatmaps):
        record, image = records[index], results[index].frame.image
        stem = _unique_stem(args.used_stems, Path(record["path"]))
        overlay_path = out_dir / f"{stem}_overlay.png"
        write_image(overlay_path, render_overlay(image, heatmap, opacity=args.opacity))
        np.save(out_dir / f"{stem}_map.npy", heatmap.values.astype(np.float32), allow_pickle=False)
        record["heatmap"] = str(overlay_path)
        record["regions"] = [region.as_dict() for region in heatmap.regions]


def _unique_stem(used: set[str], path: Path) -> str:
    # Keep the parent folder's name: MVTec-style trees repeat file names (000.png) across folders.
    stem = f"{path.parent.name}_{path.stem}" if path.parent.name else path.stem
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}_{n}"
    used.add(candidate)
    return candidate
