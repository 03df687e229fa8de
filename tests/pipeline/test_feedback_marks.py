"""Operator marks: one copy per image and label, a changed mind moves the image, recalibration stays sane."""

from __future__ import annotations

import cv2
import numpy as np

from inspector.calibration.policies import calibrate
from inspector.pipeline.feedback import add_feedback, recalibrated_on_good


def test_marking_twice_keeps_one_copy_and_relabelling_moves_it(tmp_path):
    part = tmp_path / "cell.png"
    assert cv2.imwrite(str(part), np.full((20, 20, 3), 90, np.uint8))
    other = tmp_path / "other" / "cell.png"  # same name, other bytes
    other.parent.mkdir()
    assert cv2.imwrite(str(other), np.full((20, 20, 3), 10, np.uint8))
    folder = tmp_path / "feedback"
    first = add_feedback(folder, "bad", source_path=part)
    assert add_feedback(folder, "bad", source_path=part) == first
    assert sorted(p.name for p in (folder / "bad").iterdir()) == ["cell.png"]
    assert add_feedback(folder, "bad", source_path=other).name == "cell-2.png"  # another image: kept too
    moved = add_feedback(folder, "good", source_path=part)  # the operator changed their mind
    assert moved.read_bytes() == part.read_bytes()
    assert sorted(p.name for p in (folder / "bad").iterdir()) == ["cell-2.png"]
    assert sorted(p.name for p in (folder / "good").iterdir()) == ["cell.png"]


def test_recalibrating_on_confirmed_good_never_rejects_most_of_them():
    references = np.linspace(1.0, 2.0, 50)
    known_bad = [2.5, 2.6, 2.8]
    model = calibrate(references, known_bad, policy="f1")
    recent_good = np.linspace(3.0, 4.0, 30)  # the population moved above every known-bad score
    assert calibrate(recent_good, known_bad, policy="f1").expected_frr > 0.9  # what f1 alone would do
    chosen = recalibrated_on_good(model, recent_good, frr_target=0.05)
    assert chosen.policy == "frr" and chosen.expected_frr <= 0.05 + 1e-9
    assert chosen.threshold >= np.quantile(recent_good, 0.9)
    # Where f1 is sane it stays.
    kept = recalibrated_on_good(model, np.linspace(0.9, 2.1, 30), frr_target=0.05)
    assert kept.policy == "f1"
