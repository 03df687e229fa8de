"""Deprecated location of the model facade; it lives in :mod:`inspector.pipeline.model`.

Kept only for ``inspector/evaluation/benchmark.py`` and ``tests/benchmarks/bench_peers.py``,
which are being changed elsewhere; the layers contract in pyproject.toml names this one
upward import as an exception. Import :class:`inspector.pipeline.model.InspectionModel`.
"""

from inspector.pipeline.model import InspectionModel

__all__ = ["InspectionModel"]
