"""``inspector score --engine ray``: scoring files on a Ray cluster with a pool of actors.

Each actor loads the model file once (from its path: the file is read by the actor,
never pickled), on CUDA when the actor was given a GPU, and scores chunks of files
with :func:`inspector.scale.scoring.score_chunk`, the function local scoring uses:
the actors read and hash the files themselves, in parallel. The driver keeps two
chunks in flight per actor (one scoring, one waiting: no idle gap between batches)
and hands outcomes back in input order as they complete.

Why an actor pool and not Ray Data's ``map_batches``: the records go back, in input
order, to one writer (stdout and the results store), a chunk is a list of paths (a
few hundred bytes: the pixels never travel), and the streaming executor would add
its scheduling and object-store copies for nothing; the benchmark
(tests/benchmarks/bench_scale.py) measures the overhead that is left.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from typing import Any, Iterator, Sequence

from inspector.scale.scoring import Outcome, chunked, known_for, score_chunk


def start_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to a cluster (``address``: ``"auto"`` or ``HOST:PORT``) or start a local one.

    Usage statistics are switched off and the local instance has no dashboard, so
    nothing leaves the machine; its node address is asked to be 127.0.0.1, but Ray
    2.60 still listens on every interface (its token authentication, on by default
    for local instances, guards them). An already initialised Ray (tests) is reused.

    Returns:
        Whether this call started Ray (then :func:`stop_ray` should shut it down).
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=True, logging_level="WARNING")
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, _node_ip_address="127.0.0.1",
                 log_to_driver=True, logging_level="WARNING")
    return True


def stop_ray() -> None:
    """Shut down the Ray instance this process started."""
    import ray

    ray.shutdown()


class ScoringActor:
    """One model in one worker process: loads the file once, scores chunks (see the module docstring).

    Args:
        model_path: The model file, on storage every node can read.
        threshold: The raw threshold to decide with.
        trusted_keys: ``--trusted-key`` files for the signature policy.
        threads: torch threads for this actor (its CPU share).
        device: A torch device, or ``None``: CUDA when this actor was given a GPU.
    """

    def __init__(self, model_path: str, threshold: float, trusted_keys: Sequence[str] = (), threads: int = 1,
                 device: str | None = None) -> None:
        import torch

        from inspector.core.policy import Threshold
        from inspector.pipeline.model import InspectionModel
        from inspector.storage.signing import default_trust_policy

        torch.set_num_threads(max(1, threads))
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = InspectionModel.load(model_path, device=device, trust=default_trust_policy(trusted_keys))
        self.threshold = Threshold(threshold)

    def model_hash(self) -> str:
        """The loaded model's hash (the driver checks every actor has the same model)."""
        return self.model.model_hash

    def score(self, items: list[tuple[int, str]], known: list[tuple[str, str]] | None) -> list[Outcome]:
        """Score one chunk; see :func:`inspector.scale.scoring.score_chunk`."""
        return score_chunk(self.model, items, self.threshold, known)[0]


def score_on_ray(model_path: str, model_hash: str, items: Sequence[tuple[int, str]], threshold: float, *,
                 known: dict[str, set[str]] | None, batch_size: int, workers: int | None = None,
                 trusted_keys: Sequence[str] = (), device: str | None = None,
                 threads: int | None = None) -> Iterator[Outcome]:
    """Score ``items`` on the connected Ray cluster; yields outcomes in input order.

    Args:
        model_path: The model file (absolute; every node must see it at this path).
        model_hash: The hash the driver loaded; an actor that loads another model is an error.
        items: ``(index, path)`` pairs in input order.
        threshold: The raw threshold.
        known: Already recorded ``{path: {content hashes}}`` (resuming), or ``None``.
        batch_size: Files per chunk (one forward pass).
        workers: Actors (default: the cluster's CPUs, or its GPUs when it has some); at most
            as many as the cluster has CPUs for (more would wait forever), a warning says so.
        trusted_keys, device: As for :class:`ScoringActor`.
        threads: torch threads (and CPUs reserved) per CPU actor; default the cluster's
            CPUs shared out between the actors.

    Raises:
        RuntimeError: if an actor loaded a different model (the file changed under the job).
    """
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = float(resources.get("GPU", 0)), max(1.0, float(resources.get("CPU", 1)))
    use_gpu = gpus > 0 and device != "cpu"
    count = max(1, workers or int(gpus if use_gpu and gpus >= 1 else cpus))
    threads = threads or (1 if use_gpu else max(1, int(cpus // count)))
    if count * threads > cpus:
        capped = max(1, int(cpus // threads))
        print(f"inspector: warning: the cluster has {cpus:g} CPUs: {capped} actor(s) of {threads} thread(s), "
              f"not {count}", file=sys.stderr)
        count = capped
    options: dict[str, Any] = {"num_cpus": threads}
    if use_gpu:
        options["num_gpus"] = min(1.0, gpus / count)
    actor_class = ray.remote(**options)(ScoringActor)
    actors = [actor_class.remote(os.path.abspath(model_path), threshold, list(trusted_keys), threads, device)
              for _ in range(min(count, max(1, -(-len(items) // batch_size))))]
    hashes = ray.get([actor.model_hash.remote() for actor in actors])
    if any(h != model_hash for h in hashes):
        raise RuntimeError(f"an actor loaded a different model from {model_path} (the file changed during the job?)")
    chunks = deque(enumerate(chunked(items, batch_size)))
    pending: dict[Any, tuple[int, Any]] = {}
    done: dict[int, list[Outcome]] = {}
    emitted = 0

    def submit(actor) -> None:
        if chunks:
            number, chunk = chunks.popleft()
            pending[actor.score.remote(chunk, known_for(known, chunk))] = (number, actor)

    for actor in actors:
        submit(actor)
        submit(actor)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                number, actor = pending.pop(ref)
                done[number] = ray.get(ref)
                submit(actor)
            while emitted in done:
                yield from done.pop(emitted)
                emitted += 1
    finally:
        for actor in actors:  # also ends chunks still in flight (an interrupted job)
            ray.kill(actor)
