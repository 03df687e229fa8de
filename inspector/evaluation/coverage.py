"""Do the shown false-reject intervals hold on unseen good parts? Random reference/test splits.

For a pool of good images of one product: the backbone runs once; then, many
times, ``n`` references are drawn at random, the default detector is fitted and
calibrated on them (k-fold held-out scores, as ``inspector fit`` does), and the
false-reject rate measured on all the other good images is compared with the
95 % interval the model shows. The share of splits whose measured rate lies in
the interval is the coverage. A narrow slice (the first ``n`` files by name:
a few production units) tests the drift warning instead.

With ``cross_conformal=True`` each split also measures the alternative to the
refit: scoring every unseen image with the fold models themselves and rejecting
it when it exceeds as many held-out scores, each compared under the model that
did not see it, as the refit's threshold lets through (cross-conformal
prediction, Vovk 2015). Both rules are then measured on the same unseen images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from inspector.calibration.drift import drift_test
from inspector.calibration.policies import calibrate
from inspector.core.progress import silent


@dataclass(frozen=True)
class SplitOutcome:
    """One random split: what the model showed and what happened on unseen good images."""

    references: int
    target: float
    shown_rate: float
    low: float
    high: float
    measured: float
    unseen: int
    measured_cross: float | None = None

    @property
    def covered(self) -> bool:
        """Whether the measured rate lies in the shown interval."""
        return self.low <= self.measured <= self.high

    @property
    def covered_cross(self) -> bool | None:
        """Whether the cross-conformal rule's measured rate lies in the shown interval."""
        return None if self.measured_cross is None else self.low <= self.measured_cross <= self.high


class ExtractedPool:
    """Backbone outputs of a pool of good images, for many fast refits of the default detector."""

    def __init__(self, images: Sequence[np.ndarray], image_size: int | None = None, device=None) -> None:
        from inspector.detectors.fusion import FusionDetector

        self._template = FusionDetector(image_size=image_size, device=device)
        self.pooled, self.spatial = self._template.extract(images)
        self.count = len(images)

    def subset(self, rows: np.ndarray):
        """Pooled and spatial outputs of the given rows."""
        index = np.asarray(rows)
        return [level[index] for level in self.pooled], [m[index] for m in self.spatial]

    def fit(self, rows: np.ndarray, folds: int | None = None, on_fold=None):
        """A fitted detector on ``rows`` and its held-out scores (``on_fold``: see ``fit_extracted``)."""
        from inspector.detectors.fusion import FusionDetector

        detector = FusionDetector(image_size=self._template.preprocessing.image_size,
                                  device=self._template.device, _net=self._template.net)
        result = detector.fit_extracted(*self.subset(rows), silent(), folds=folds, on_fold=on_fold)
        return detector, result.held_out_scores

    def fit_with_fold_scores(self, rows: np.ndarray, others: np.ndarray, folds: int | None = None):
        """Fit on ``rows``; also score ``others`` under every fold model.

        Returns the detector, the held-out scores ``(n,)`` and ``fold_scores``
        ``(n, len(others))``: row ``i`` holds the scores of ``others`` under the
        model that did not see reference ``i``.
        """
        pooled, spatial = self.subset(others)
        evidences: list[tuple[np.ndarray, dict]] = []
        detector, held_out = self.fit(rows, folds, on_fold=lambda held, evidence: evidences.append(
            (held, evidence(pooled, spatial))))
        fold_scores = np.zeros((len(rows), len(others)))
        for held, evidence in evidences:
            fold_scores[held] = detector.fuse_evidence(evidence)
        return detector, held_out, fold_scores

    def scores(self, detector, rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` under ``detector``."""
        return detector.score_extracted(*self.subset(rows))


def random_splits(pool: ExtractedPool, references: int, splits: int, targets: Sequence[float] = (0.01, 0.05),
                  seed: int = 0, cross_conformal: bool = False, unseen_limit: int | None = None) -> list[SplitOutcome]:
    """Fit on ``references`` random images ``splits`` times; measure each target's FRR on the rest.

    ``unseen_limit`` measures on at most that many of the other images (drawn at random).
    """
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(splits):
        order = rng.permutation(pool.count)
        refs, unseen = np.sort(order[:references]), np.sort(order[references:][:unseen_limit])
        fold_scores = None
        if cross_conformal:
            detector, held_out, fold_scores = pool.fit_with_fold_scores(refs, unseen)
            # exceeded[j]: how many held-out scores unseen image j exceeds, each under the model without it.
            exceeded = (fold_scores > held_out[:, None]).sum(0)
        else:
            detector, held_out = pool.fit(refs)
        scores = pool.scores(detector, unseen)
        for target in targets:
            calibration = calibrate(held_out, policy="frr", target=target)
            frr = calibration.frr
            cross = None
            if fold_scores is not None:
                cross = float(np.mean(exceeded >= len(held_out) - frr.count))
            outcomes.append(SplitOutcome(references, target, frr.rate, frr.low, frr.high,
                                         float(np.mean(scores > calibration.threshold)), len(unseen), cross))
    return outcomes


def narrow_slice(pool: ExtractedPool, references: int, production: int = 30, seed: int = 0) -> dict:
    """Fit on the first ``references`` images (a narrow slice); test drift on ``production`` others at random."""
    refs = np.arange(references)
    rest = np.arange(references, pool.count)
    detector, held_out = pool.fit(refs)
    calibration = calibrate(held_out)
    scores = pool.scores(detector, rest)
    sample = np.random.default_rng(seed).choice(len(rest), size=min(production, len(rest)), replace=False)
    report = drift_test(held_out, calibration.threshold, scores[sample])
    return {"shown": calibration.frr.to_dict(), "measured_frr": float(np.mean(scores > calibration.threshold)),
            "unseen": len(rest), "drift": report.to_dict()}


def coverage_table(outcomes: Sequence[SplitOutcome]) -> list[dict]:
    """Coverage and mean rates per (references, target)."""
    rows = []
    keys = sorted({(o.references, o.target) for o in outcomes})
    for references, target in keys:
        group = [o for o in outcomes if o.references == references and o.target == target]
        rows.append({
            "references": references, "target": target, "splits": len(group),
            "coverage": float(np.mean([o.covered for o in group])),
            "mean_shown": float(np.mean([o.shown_rate for o in group])),
            "mean_interval": [float(np.mean([o.low for o in group])), float(np.mean([o.high for o in group]))],
            "mean_measured": float(np.mean([o.measured for o in group])),
        })
        if all(o.measured_cross is not None for o in group):
            rows[-1]["coverage_cross"] = float(np.mean([o.covered_cross for o in group]))
            rows[-1]["mean_measured_cross"] = float(np.mean([o.measured_cross for o in group]))
    return rows
