"""Scoring a chunk of files into records: the one code path of local and Ray scoring.

``inspector score`` (locally) and every Ray actor call :func:`score_chunk`, so a file
gets the same record whichever engine scored it. With ``known`` (resuming from a
results store) each file's content is hashed, and a file whose ``(path, hash)`` is
already recorded for the model is skipped, not read as an image. Nothing here
imports Ray.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

_NO_PIXELS = np.zeros((1, 1, 3), np.uint8)
SOURCE = "score"
"""The ``source`` of the rows ``inspector score --db`` records."""


@dataclass
class Outcome:
    """What scoring one file gave.

    Attributes:
        index: The file's position in the input listing (the output order).
        record: What ``inspector score`` prints: ``path`` plus ``score``, ``raw_score``,
            ``anomalous``, ``threshold`` (rounded to 6 decimals), or ``error``.
        content_hash: sha256 of the file's bytes (``None`` without resuming, or unreadable bytes).
        skipped: Already recorded for this model and content: not scored again.
        raw_score, score, threshold: Unrounded values, for the results store.
        latency_ms: Scoring time per image of its batch.
        scored_at: When it was scored (seconds since the epoch).
    """

    index: int
    record: dict
    content_hash: str | None = None
    skipped: bool = False
    raw_score: float | None = None
    score: float | None = None
    threshold: float | None = None
    latency_ms: float = 0.0
    scored_at: float = 0.0
    extra: dict = field(default_factory=dict)


def score_chunk(model, items: Sequence[tuple[int, str]], threshold, known: Iterable[tuple[str, str]] | None = None,
                maps: str | None = None, maps_on: str = "ng") -> tuple[list[Outcome], list[Any]]:
    """Read and score one chunk of files in one batch.

    Args:
        model: An :class:`~inspector.pipeline.model.InspectionModel`.
        items: ``(index, path)`` pairs.
        threshold: The :class:`~inspector.core.policy.Threshold` to decide with.
        known: ``(absolute path, content hash)`` pairs already recorded for this model;
            ``None``: no resuming and no hashing.
        maps, maps_on: Passed to ``model.inspect`` (``"fast"`` for overlays).

    Returns:
        ``(outcomes, results)``: one outcome per item in order; ``results`` are the
        pipeline's records of the scored (readable, not skipped) files, in order.
    """
    import time

    from inspector.core.imageio import ImageReadError, read_image
    from inspector.core.records import Frame
    from inspector.storage.results_db import file_digest

    known_set = set(known) if known is not None else None
    outcomes, frames, scored = [], [], []
    for index, path in items:
        outcome = Outcome(index, {"path": str(path)})
        outcomes.append(outcome)
        if known_set is not None:
            outcome.content_hash = file_digest(path)
            if outcome.content_hash is not None and (os.path.abspath(path), outcome.content_hash) in known_set:
                outcome.skipped = True
                continue
        try:
            frames.append(Frame(read_image(path), "cli", len(frames), path=str(path)))
            scored.append(outcome)
        except ImageReadError as exc:
            outcome.record["error"] = str(exc)
            outcome.scored_at = time.time()
    results: list[Any] = []
    if frames:
        start = time.perf_counter()
        results = model.inspect(frames, maps=maps, threshold=threshold, maps_on=maps_on)
        per_image = (time.perf_counter() - start) * 1000.0 / len(frames)
        now = time.time()
        for outcome, result in zip(scored, results):
            outcome.record.update(score=round(result.score, 6), raw_score=round(result.raw_score, 6),
                                  anomalous=result.anomalous, threshold=round(result.threshold, 6))
            outcome.raw_score, outcome.score = float(result.raw_score), float(result.score)
            outcome.threshold, outcome.latency_ms, outcome.scored_at = float(result.threshold), per_image, now
    return outcomes, results


def record_outcome(store, outcome: Outcome, model_hash: str) -> bool:
    """Write one scored file to a results store (``skipped`` ones are not written).

    The uid (:func:`~inspector.storage.stores.score_uid`) makes the write idempotent:
    a second write of the same model, file and content stores nothing.

    Returns:
        Whether a row was written (or was already there under its uid).
    """
    from inspector.core.records import Frame, InspectionResult
    from inspector.storage.stores import score_uid

    if outcome.skipped:
        return False
    path = os.path.abspath(outcome.record["path"])
    uid = score_uid(model_hash, path, outcome.content_hash)
    if "error" in outcome.record:
        store.record_error(SOURCE, outcome.record["error"], path, outcome.index, model_hash, uid=uid,
                           content_hash=outcome.content_hash)
        return True
    # The row needs no pixels: the score command saves no NG images to the store.
    frame = Frame(_NO_PIXELS, SOURCE, outcome.index, path=path, timestamp=outcome.scored_at)
    result = InspectionResult(frame=frame, raw_score=outcome.raw_score, score=outcome.score,
                              threshold=outcome.threshold, anomalous=bool(outcome.record["anomalous"]),
                              model_hash=model_hash, latency_ms=outcome.latency_ms)
    store.record(result, uid=uid, content_hash=outcome.content_hash)
    return True


def chunked(items: Sequence[tuple[int, str]], size: int) -> list[list[tuple[int, str]]]:
    """``items`` in consecutive chunks of ``size`` (the last may be shorter)."""
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def known_by_path(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """``(path, content hash)`` pairs from a results store, grouped by path."""
    grouped: dict[str, set[str]] = {}
    for path, digest in pairs:
        grouped.setdefault(path, set()).add(digest)
    return grouped


def known_for(known: dict[str, set[str]] | None, chunk: Sequence[tuple[int, str]]) -> list[tuple[str, str]] | None:
    """The known ``(path, hash)`` pairs of ``chunk``'s files (what an actor is sent with the chunk)."""
    if known is None:
        return None
    pairs = []
    for _, path in chunk:
        absolute = os.path.abspath(path)
        pairs.extend((absolute, digest) for digest in known.get(absolute, ()))
    return pairs
