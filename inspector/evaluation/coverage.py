"""Do the shown false-reject intervals hold on unseen good parts? Random reference/test splits.

For a pool of good images of one product: the backbone runs once; then, many
times, ``n`` references are drawn at random, the default detector is fitted and
calibrated on them (k-fold held-out scores, as ``inspector fit`` does), and the
false-reject rate measured on all the other good images is compared with the
95 % interval the model shows. The share of splits whose measured rate lies in
the interval is the coverage. A narrow slice (the first ``n`` files by name:
a few production units) tests the drift warning instead.
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

    @property
    def covered(self) -> bool:
        """Whether the measured rate lies in the shown interval."""
        return self.low <= self.measured <= self.high


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

    def fit(self, rows: np.ndarray, folds: int | None = None):
        """A fitted detector on ``rows`` and its held-out scores."""
        from inspector.detectors.fusion import FusionDetector

        detector = FusionDetector(image_size=self._template.preprocessing.image_size,
                                  device=self._template.device, _net=self._template.net)
        result = detector.fit_extracted(*self.subset(rows), silent(), folds=folds)
        return detector, result.held_out_scores

    def scores(self, detector, rows: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` under ``detector``."""
        return detector.score_extracted(*self.subset(rows))


def random_splits(pool: ExtractedPool, references: int, splits: int, targets: Sequence[float] = (0.01, 0.05),
                  seed: int = 0) -> list[SplitOutcome]:
    """Fit on ``references`` random images ``splits`` times; measure each target's FRR on the rest."""
    rng = np.random.default_rng(seed)
    outcomes = []
    for _ in range(splits):
        order = rng.permutation(pool.count)
        refs, unseen = np.sort(order[:references]), np.sort(order[references:])
        detector, held_out = pool.fit(refs)
        scores = pool.scores(detector, unseen)
        for target in targets:
            calibration = calibrate(held_out, policy="frr", target=target)
            frr = calibration.frr
            outcomes.append(SplitOutcome(references, target, frr.rate, frr.low, frr.high,
                                         float(np.mean(scores > calibration.threshold)), len(unseen)))
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
    return rows
