"""Tests of the image-level metrics."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.metrics.image import auroc, auroc_difference, best_f1, f1_at


def test_auroc_perfect_inverted_and_known_value() -> None:
    labels = [0, 0, 1, 1]
    assert auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auroc_one_class_raises_clearly() -> None:
    with pytest.raises(ValueError, match="good and defective"):
        auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="good and defective"):
        auroc([1, 1], [0.1, 0.2])


def test_invalid_input_raises() -> None:
    with pytest.raises(ValueError, match="labels"):
        auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 .good. or 1"):
        auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        f1_at([0, 1], [0.1, float("nan")], 0.5)


def test_f1_at() -> None:
    labels = [0, 0, 1, 1, 1]
    scores = [0.1, 0.6, 0.5, 0.7, 0.2]
    # flagged at 0.5: 0.6 (fp), 0.5 (tp), 0.7 (tp); missed 0.2 (fn) -> 2*2 / (4 + 1 + 1)
    assert f1_at(labels, scores, 0.5) == pytest.approx(4 / 6)
    assert f1_at(labels, scores, 10.0) == 0.0


def test_best_f1_perfect_separation() -> None:
    f1, threshold = best_f1([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert f1 == 1.0
    assert threshold == 0.8


def test_best_f1_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 1)  # rounding makes ties
    f1, threshold = best_f1(labels, scores)
    brute = max(f1_at(labels, scores, t) for t in np.unique(scores))
    assert f1 == pytest.approx(brute)
    assert f1_at(labels, scores, threshold) == pytest.approx(f1)


def test_best_f1_without_defects_raises() -> None:
    with pytest.raises(ValueError, match="defective"):
        best_f1([0, 0], [0.1, 0.2])


def test_auroc_difference_interval_covers_the_true_gap_and_excludes_zero_when_clear():
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(150), np.ones(300)].astype(int)
    strong = rng.normal(size=450) + 2.0 * labels
    weak = strong + rng.normal(size=450) * 1.5   # the same images, blurred: clearly worse
    difference, low, high = auroc_difference(labels, strong, weak, resamples=1000)
    assert difference == pytest.approx(auroc(labels, strong) - auroc(labels, weak))
    assert 0.0 < low < difference < high


def test_auroc_difference_of_a_method_with_itself_is_exactly_zero():
    rng = np.random.default_rng(4)
    labels = np.r_[np.zeros(40), np.ones(60)].astype(int)
    scores = rng.normal(size=100) + labels
    assert auroc_difference(labels, scores, scores, resamples=200) == (0.0, 0.0, 0.0)


def test_auroc_difference_interval_spans_zero_for_two_equally_good_methods():
    rng = np.random.default_rng(5)
    labels = np.r_[np.zeros(100), np.ones(100)].astype(int)
    first = rng.normal(size=200) + labels
    # The same scores shuffled within each class: the same AUROC, but on other images.
    second = np.r_[rng.permutation(first[:100]), rng.permutation(first[100:])]
    difference, low, high = auroc_difference(labels, first, second, resamples=1000)
    assert difference == pytest.approx(0.0)
    assert low < -0.02 and high > 0.02


def test_auroc_difference_rejects_score_sets_of_different_lengths():
    with pytest.raises(ValueError):
        auroc_difference([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], [0.1, 0.9, 0.2])
