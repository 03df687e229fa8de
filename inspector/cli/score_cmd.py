"""``inspector score``: score image files and folders with a model file.

Locally in batches (default), or with ``--engine ray`` on a Ray cluster's actor pool
(:mod:`inspector.scale.ray_engine`; Ray is imported only then). Both go through
:func:`inspector.scale.scoring.score_chunk`, so a file gets the same record either way.
With ``--db`` every scored file is recorded (OK, NG, ERROR, its content hash) and a
rerun skips the files already recorded for the same model and the same content.
``--recipe NAME`` scores with a recipe's model and threshold override and stores its
name; ``--mqtt URL`` publishes every decision as ``inspector serve`` does, through the
same durable outbox (:mod:`inspector.cli.score_line`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from inspector.cli.common import (
    add_device,
    add_quiet,
    add_runtime,
    check_runtime,
    finite_float,
    fraction,
    load_model,
    output_folder,
    positive_int,
    report_skipped,
)
from inspector.cli.output import RecordWriter
from inspector.cli.progress_bar import progress_bar
from inspector.core.imageio import list_images, write_image

HELP = "score images (files or folders, recursive); exit 0 whatever the verdicts"

DRAIN_S = 10.0
"""How long score waits at the end for the broker to acknowledge what it published."""


def _seconds(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        import argparse

        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {text}")
    return value


def add_arguments(parser) -> None:
    """Arguments of ``inspector score``."""
    from inspector.cli.sign_cmd import add_trusted_key
    from inspector.pipeline.maps import SEGMENTERS

    add_trusted_key(parser)

    parser.add_argument("model", metavar="MODEL",
                        help="model file written by `inspector fit`, or a .onnx file written by `inspector export` "
                             "(leave it out with --recipe: then every positional is a PATH)")
    parser.add_argument("paths", metavar="PATH", nargs="*", help="image files or folders")
    parser.add_argument("--recipe", metavar="NAME",
                        help="score with this recipe's model and threshold override (inspector recipe list); "
                             "its name is stored in every --db row and MQTT message")
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
    parser.add_argument("--db", metavar="PATH|URL",
                        help="record every scored file in this results store (an SQLite file or "
                             "postgresql://user@host:port/dbname) and skip files already recorded for this "
                             "model with the same content (a rerun resumes)")
    parser.add_argument("--station", metavar="NAME",
                        help="with --db or --mqtt: the station name stored and in the topics (default: host name)")
    parser.add_argument("--mqtt", metavar="URL",
                        help="publish every decision to mqtt[s]://[user@]host[:port][/prefix][?ca=FILE&cert=FILE&"
                             "key=FILE] on PREFIX/STATION/decision, QoS 1, as inspector serve (password: "
                             "INSPECTOR_MQTT_PASSWORD); a broker that is down costs nothing: decisions wait in "
                             "the outbox")
    parser.add_argument("--outbox", metavar="DIR",
                        help="with --mqtt: where decisions wait for the broker (default: DB.mqtt-outbox beside an "
                             "SQLite --db, as serve's; else STATION.mqtt-outbox in the user data folder)")
    parser.add_argument("--drain", type=_seconds, default=DRAIN_S, metavar="S",
                        help=f"with --mqtt: at the end wait up to S seconds for the broker (default {DRAIN_S:g}); "
                             "the rest waits in the outbox for the next run")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this process, in batches (default); ray: an actor pool on a Ray cluster "
                             "(pip install 'inspector[scale]')")
    parser.add_argument("--address", metavar="auto|HOST:PORT",
                        help="with --engine ray: the cluster to join (default: start a local one on loopback)")
    parser.add_argument("--workers", type=positive_int, metavar="N",
                        help="with --engine ray: scoring actors (default: one per CPU, or per GPU)")
    add_runtime(parser)
    add_device(parser)
    add_quiet(parser)


def run(args) -> int:
    """Score every image; one record per image, errors included, in input order."""
    import os

    from inspector.cli.score_line import ScoreLine, resolve_recipe
    from inspector.core.policy import Threshold
    from inspector.scale.scoring import known_by_path

    recipe = resolve_recipe(args)  # an unknown recipe: exit 2 before anything is loaded
    if args.outbox and not args.mqtt:
        raise ValueError("--outbox is where --mqtt decisions wait: give --mqtt URL too")
    if args.engine != "ray" and (args.address or args.workers):
        raise ValueError("--address and --workers go with --engine ray")
    if args.engine == "ray" and args.heatmaps:
        raise ValueError("--heatmaps is not available with --engine ray (score, then map the NG files locally)")
    if args.station and not (args.db or args.mqtt):
        raise ValueError("--station names this station in the results store or the MQTT topics: use it with --db "
                         "or --mqtt")
    # A bad URL, unusable TLS files or an outbox in use: exit 2 before the model is even looked at.
    line = ScoreLine(args.mqtt, args.station, args.db, args.outbox, recipe.name if recipe is not None else None)
    runtime = check_runtime(args.model, args.runtime)
    if runtime == "onnx" and args.engine == "ray":
        raise ValueError("--engine ray scores .safetensors models; run the exported model with --engine local")
    if runtime == "onnx" and args.heatmaps and args.segmenter != "fast":
        raise ValueError(f"--segmenter {args.segmenter}: an exported ONNX model draws only the fast map "
                         "(use --segmenter fast, or score the .safetensors model for the gradient map)")
    out_dir = output_folder(args.heatmaps, "--heatmaps") if args.heatmaps else None
    line.start()  # connects while the model loads
    store, started_ray = None, False
    try:
        # With Ray the actors score (on their GPU if any); the driver only needs the hash and the threshold.
        model = load_model(args.model, "cpu" if args.engine == "ray" else args.device, args=args,
                           exported=True)
        threshold = Threshold(args.threshold) if args.threshold is not None else model.decision
        if args.heatmaps and args.segmenter not in model.supported_segmenters:
            raise ValueError(f"this model has no {args.segmenter!r} map (available: "
                             f"{', '.join(model.supported_segmenters) or 'none'})")
        listing = list_images(args.paths, recursive=not args.no_recursive)
        items = [(index, str(path)) for index, path in enumerate(listing.images)]
        writer = RecordWriter(args.format)
        args.used_stems = set()
        counts = {"OK": 0, "NG": 0, "error": 0, "skipped": 0}
        known = None
        if args.db:
            from inspector.storage.stores import open_store

            store = open_store(args.db, station=args.station)
            known = known_by_path(store.recorded_contents(model.model_hash, [os.path.abspath(p) for _, p in items]))
        if args.engine == "ray":
            from inspector.scale.ray_engine import score_on_ray, start_ray

            started_ray = start_ray(args.address)
            outcomes = score_on_ray(args.model, model.model_hash, items, threshold.raw, known=known,
                                    batch_size=args.batch_size, workers=args.workers,
                                    trusted_keys=getattr(args, "trusted_key", None) or (), device=args.device)
        else:
            outcomes = _score_locally(model, items, threshold, known, out_dir, args)
        with progress_bar(args.quiet, "score") as progress:
            for done, outcome in enumerate(outcomes, start=1):
                if outcome.skipped:
                    counts["skipped"] += 1
                else:
                    line.take(store, outcome, model.model_hash)  # the row, then the message: one uid
                    record = outcome.record
                    counts["error" if "error" in record else ("NG" if record["anomalous"] else "OK")] += 1
                    writer.write(record)
                progress.update(done, len(items), "scoring images")
    finally:
        if store is not None:
            store.close()
        line.finish(args.drain)  # what the broker has not acknowledged stays on disk
        if started_ray:
            from inspector.scale.ray_engine import stop_ray

            stop_ray()
    report_skipped(listing.skipped, [], listing.problems)
    if args.db:
        print(f"inspector: skipped {counts['skipped']} file(s) already recorded for this model with the same "
              f"content; {len(items) - counts['skipped']} new", file=sys.stderr)
    print(f"inspector: {counts['OK']} OK, {counts['NG']} NG, {counts['error']} unreadable "
          f"(threshold {threshold.raw:.4f} raw)", file=sys.stderr)
    return 0


def _score_locally(model, items, threshold, known, out_dir, args):
    """Outcomes of local batched scoring, in input order (overlays written per batch when asked)."""
    from inspector.scale.scoring import chunked, known_for, score_chunk

    # The fast map (for the overlays, or to weight the gradient map) comes from the scoring pass.
    maps = "fast" if out_dir is not None and "fast" in model.supported_segmenters else None
    for chunk in chunked(items, args.batch_size):
        outcomes, results = score_chunk(model, chunk, threshold, known_for(known, chunk), maps=maps,
                                        maps_on="all" if args.all else "ng")
        if out_dir is not None and results:
            scored = [o.record for o in outcomes if not o.skipped and "error" not in o.record]
            _write_heatmaps(model, results, scored, out_dir, args)
        yield from outcomes


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
        inspected = model.regions.inspected if getattr(model, "regions", None) is not None else None
        write_image(overlay_path, render_overlay(image, heatmap, opacity=args.opacity, inspected=inspected))
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
