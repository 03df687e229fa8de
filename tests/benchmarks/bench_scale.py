"""Scaling out: Ray scoring vs local batched scoring, per-actor throughput, and results-store write rates.

    python tests/benchmarks/bench_scale.py [--images 2000] [--model MODEL] [--batch-size 16] [--no-ray-data]

Without --model, a model is fitted on generated 128 px textures and the images are
generated textures too (a few hundred distinct ones, copied to N files). Measured:

- local batched scoring (this process, all cores; and one thread, the share of one actor);
- ``--engine ray``'s actor pool with 2 actors and with 1 (ray.init is timed apart:
  a cluster is started once, a job joins it), and the same actors under Ray Data
  ``map_batches`` (the alternative the engine was chosen against);
- decisions/s written by one writer to PostgreSQL (a throwaway server) and to SQLite.

Targets (issue 15): Ray wall time within 1.3x of local, per-actor throughput within
10 % of local on one thread, PostgreSQL >= 100 decisions/s. Prints numbers; exit 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def make_images(folder: Path, count: int) -> list[str]:
    """``count`` image files: generated textures (good and defective), copied round-robin."""
    from inspector.datasets.synthetic import generate_dataset

    generate_dataset(folder / "ds", categories=["brick"], image_size=128, n_train=30, n_test_good=150,
                     n_test_defect_per_type=10, seed=5)
    sources = sorted((folder / "ds" / "brick" / "test").rglob("*.png"))
    out = folder / "images"
    out.mkdir()
    paths = []
    for i in range(count):
        target = out / f"{i:06d}.png"
        shutil.copy(sources[i % len(sources)], target)
        paths.append(str(target))
    return paths


def local_rate(model, items, batch_size: int, threads: int) -> tuple[float, dict]:
    """Wall seconds of local batched scoring on ``threads`` torch threads, and the raw scores."""
    import torch

    from inspector.scale.scoring import chunked, score_chunk

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start, scores = time.perf_counter(), {}
        for chunk in chunked(items, batch_size):
            for outcome in score_chunk(model, chunk, model.decision)[0]:
                scores[outcome.index] = outcome.raw_score
        return time.perf_counter() - start, scores
    finally:
        torch.set_num_threads(previous)


def ray_actors(model_path, model, items, batch_size: int, workers: int,
               threads: int | None = None) -> tuple[float, dict, float]:
    """Wall seconds of the engine's actor pool (actor start and model load included), the raw scores,
    and the steady rate: images/s after the first chunk came back (start-up excluded)."""
    from inspector.scale.ray_engine import score_on_ray

    start, scores, first = time.perf_counter(), {}, None
    for outcome in score_on_ray(str(model_path), model.model_hash, items, model.decision.raw, known=None,
                                batch_size=batch_size, workers=workers, threads=threads):
        scores[outcome.index] = outcome.raw_score
        if first is None and len(scores) == batch_size:
            first = time.perf_counter()
    end = time.perf_counter()
    return end - start, scores, (len(items) - batch_size) / max(end - (first or start), 1e-9)


def ray_data(model_path, model, items, batch_size: int, workers: int) -> tuple[float, dict]:
    """Wall seconds of the same scoring as Ray Data ``map_batches`` over an actor pool, order preserved."""
    import numpy as np
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False

    class Scorer:
        def __init__(self, path: str, threshold: float) -> None:
            import torch

            from inspector.core.policy import Threshold
            from inspector.pipeline.model import InspectionModel

            torch.set_num_threads(1)
            self.model, self.threshold = InspectionModel.load(path, device="cpu"), Threshold(threshold)

        def __call__(self, batch):
            from inspector.scale.scoring import score_chunk

            pairs = list(zip(batch["index"].tolist(), batch["path"].tolist()))
            outcomes = score_chunk(self.model, pairs, self.threshold)[0]
            return {"index": np.array([o.index for o in outcomes]),
                    "raw_score": np.array([np.nan if o.raw_score is None else o.raw_score for o in outcomes])}

    start, scores = time.perf_counter(), {}
    dataset = ray.data.from_items([{"index": i, "path": p} for i, p in items])
    scored = dataset.map_batches(Scorer, fn_constructor_args=(str(model_path), model.decision.raw),
                                 batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1)
    for row in scored.iter_rows():
        scores[int(row["index"])] = float(row["raw_score"])
    return time.perf_counter() - start, scores


def write_rate(store, count: int) -> float:
    """Decisions/s one writer commits, one at a time (each with a uid, as the score command writes)."""
    import numpy as np

    from inspector.core.records import Frame, InspectionResult

    pixels = np.zeros((1, 1, 3), np.uint8)
    start = time.perf_counter()
    for k in range(count):
        frame = Frame(pixels, "bench", k, path=f"/archive/{k:07d}.png")
        store.record(InspectionResult(frame=frame, raw_score=1.0, score=0.5, threshold=2.0, anomalous=False,
                                      model_hash="bench", latency_ms=5.0), uid=f"bench-{k}", content_hash="x")
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--model", help="a model file (default: fit one on generated textures)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--writes", type=int, default=2000, help="decisions written per store")
    parser.add_argument("--no-ray-data", action="store_true", help="skip the Ray Data variant")
    args = parser.parse_args(argv)

    from inspector.cli.main import main as cli
    from inspector.pipeline.model import InspectionModel

    folder = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    paths = make_images(folder, args.images)
    model_path = Path(args.model) if args.model else folder / "m.safetensors"
    if not args.model:
        assert cli(["fit", str(folder / "ds" / "brick" / "train" / "good"), "-o", str(model_path),
                    "--image-size", "128", "--quiet"]) == 0
    model = InspectionModel.load(model_path, device="cpu")
    items = list(enumerate(paths))
    cores = os.cpu_count() or 1
    print(f"{len(items)} images, batch {args.batch_size}, {cores} cores, model {model.detector_kind} "
          f"{model.model_hash[:12]}")

    local_s, local_scores = local_rate(model, items, args.batch_size, cores)
    print(f"local batched ({cores} threads): {local_s:.1f} s, {len(items) / local_s:.1f} images/s")
    local1_s, _ = local_rate(model, items, args.batch_size, 1)
    print(f"local batched (1 thread):    {local1_s:.1f} s, {len(items) / local1_s:.1f} images/s")

    from inspector.scale.ray_engine import start_ray, stop_ray

    t = time.perf_counter()
    start_ray(None, num_cpus=cores)
    print(f"ray.init (local, {cores} CPUs): {time.perf_counter() - t:.1f} s (once per cluster, not per job)")
    failures = []
    try:
        ray_s, ray_scores, steady = ray_actors(model_path, model, items, args.batch_size, cores)
        worst = max(abs(ray_scores[i] - s) / abs(s) for i, s in local_scores.items() if s)
        print(f"ray actors ({cores}): {ray_s:.1f} s, {len(items) / ray_s:.1f} images/s, "
              f"{ray_s / local_s:.2f}x local wall time (target <= 1.3x); after start-up {steady:.1f} images/s; "
              f"max rel. score difference {worst:.1e}")
        one_s, _, one_steady = ray_actors(model_path, model, items, args.batch_size, 1, threads=1)
        ratio = one_steady / (len(items) / local1_s)
        print(f"ray actor (1): {one_s:.1f} s, {len(items) / one_s:.1f} images/s overall, {one_steady:.1f} images/s "
              f"after start-up = {ratio:.2f} of local on 1 thread (target >= 0.90)")
        best = min(local_s, local1_s)
        print(f"ray actors ({cores}) vs the faster local run ({best:.1f} s): {ray_s / best:.2f}x")
        failures += [name for name, bad in (("ray wall time", ray_s > 1.3 * local_s), ("per-actor", ratio < 0.9)) if bad]
        if not args.no_ray_data:
            data_s, _ = ray_data(model_path, model, items, args.batch_size, cores)
            print(f"ray data map_batches ({cores} actors): {data_s:.1f} s, {len(items) / data_s:.1f} images/s, "
                  f"{data_s / local_s:.2f}x local")
    finally:
        stop_ray()

    from inspector.scale.pg_server import find_bin_dir
    from inspector.storage.results_db import ResultStore

    with ResultStore(folder / "w.sqlite3") as store:
        print(f"SQLite, one writer: {write_rate(store, args.writes):.0f} decisions/s")
    if find_bin_dir() is not None:
        from inspector.scale.pg_server import PostgresServer
        from inspector.storage.stores import open_store

        server = PostgresServer().start()
        try:
            with open_store(server.create_database("bench")) as store:
                rate = write_rate(store, args.writes)
            print(f"PostgreSQL (loopback, fsync on), one writer: {rate:.0f} decisions/s (target >= 100)")
            failures += ["postgresql rate"] if rate < 100 else []
        finally:
            server.stop()
    shutil.rmtree(folder, ignore_errors=True)
    print("targets met" if not failures else f"targets missed: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
