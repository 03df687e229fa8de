"""The shown false-reject bound holds on unseen real parts, and a narrow reference slice is reported.

A fast version of ``tests/benchmarks/bench_coverage.py`` on ELPV mono cells.
"""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.imageio import read_image
from inspector.evaluation.coverage import ExtractedPool, coverage_table, narrow_slice, random_splits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool(elpv_mono):
    # The first 200 good mono cells by name: a pool that still spans many modules.
    return ExtractedPool([read_image(p) for p in elpv_mono.good[:200]])


def test_interval_covers_the_rate_measured_on_unseen_good_cells(pool):
    outcomes = random_splits(pool, references=30, splits=10, targets=(0.05, 0.10), seed=1)
    table = coverage_table(outcomes)
    for row in table:
        assert row["coverage"] >= 0.8, row
    # And the bound is not vacuous: well below 50 %.
    assert all(row["mean_interval"][1] < 0.35 for row in table)


def test_narrow_slice_of_references_is_reported_as_drift(pool):
    result = narrow_slice(pool, references=30, production=30)
    assert result["drift"]["drift"] is True, result


def test_fold_models_reproduce_the_held_out_scores_they_gave(pool):
    # The cross-conformal measurement scores other images with each fold model; scored with
    # the model that did not see them, the references must get back their own held-out scores.
    refs = np.arange(0, 60, 2)
    detector, held_out, fold_scores = pool.fit_with_fold_scores(refs, refs)
    assert fold_scores.shape == (30, 30)
    np.testing.assert_allclose(np.diag(fold_scores), held_out, rtol=1e-6)
    # ... and scored by a fold model that saw it (row i != column j), a reference scores lower
    # than held out: in-sample scores are biased low, which is why calibration holds them out.
    seen = ~np.eye(30, dtype=bool)
    assert np.mean((fold_scores < held_out[None, :])[seen]) > 0.7
