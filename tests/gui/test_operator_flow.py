"""The operator's job: run a source, see verdicts, move the threshold (re-decision, no rescoring)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from gui_stubs import Recorder, gray_folder, stub_model


def test_folder_run_shows_verdicts_and_records_them(make_window, qtbot, tmp_path):
    folder = tmp_path / "parts"
    gray_folder(folder, [60, 70, 200, 80, 210, 50])  # two bright = NG at threshold 0.5
    (folder / "img_003b.png").write_bytes(b"truncated")  # a file that cannot be read
    window = make_window()
    model = stub_model(threshold=0.5)
    window.station.set_model(model, "stub.safetensors")
    painted = Recorder()
    window.frame_painted.connect(painted.record)
    finished = Recorder()
    window.station.inspection.run_state_changed.connect(finished.record)

    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in finished.calls, timeout=5000)
    qtbot.waitUntil(lambda: window.history.counts() == (4, 2), timeout=2000)
    # Paints are coalesced: wait until the last file (level 50) is the one on screen.
    qtbot.waitUntil(lambda: bool(painted.calls) and painted.calls[-1][0].frame.path.endswith("img_005.png"),
                    timeout=2000)

    assert window.verdict.verdict == "OK"
    assert window.verdict.ng_count.text() == "2"
    assert model.detector.passes.value == 6
    qtbot.waitUntil(lambda: window.verdict.last_ng_caption.text().startswith("Last reject  img_00"), timeout=3000)
    db = tmp_path / "data" / "results.sqlite3"
    rows = sqlite3.connect(db).execute("SELECT verdict, image_path FROM decisions ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["OK", "OK", "NG", "OK", "ERROR", "NG", "OK"]
    assert all(r[1] for r in rows if r[0] == "NG")


def test_threshold_redecides_history_without_rescoring(make_window, qtbot, tmp_path):
    folder = tmp_path / "parts"
    gray_folder(folder, [60, 100, 140, 180])  # scores ~0.24 .. 0.70
    window = make_window()
    model = stub_model(threshold=0.5)
    window.station.set_model(model, "")
    done = Recorder()
    window.station.inspection.run_state_changed.connect(done.record)
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in done.calls, timeout=5000)
    qtbot.waitUntil(lambda: len(window.history.scores) == 4, timeout=2000)
    assert window.history.counts() == (2, 2)
    calls = model.detector.passes.value

    # One unit for the operator: 1.0 = the calibrated threshold (0.5 raw here), raw in the line below.
    assert window.operator.relative_threshold == pytest.approx(1.0)
    window.operator.spin.setValue(0.6)  # 0.6 x calibrated = raw 0.3; debounced: nothing yet
    assert window.operator.raw_label.text().startswith("raw 0.3 ")
    assert window.station.threshold == pytest.approx(0.5)
    qtbot.waitUntil(lambda: window.station.threshold == pytest.approx(0.3), timeout=1000)
    assert window.history.counts() == (1, 3)
    assert window.verdict.ng_count.text() == "3"
    assert window.history.threshold_line.value() == pytest.approx(0.6)  # drawn in the operator's unit
    assert window.calibration.line.value() == pytest.approx(0.3)

    window.operator.slider.setValue(window.operator.slider.maximum())
    qtbot.waitUntil(lambda: window.history.counts() == (4, 0), timeout=1000)
    window.operator.reset_button.click()
    assert window.station.threshold == pytest.approx(0.5)
    assert window.history.counts() == (2, 2)
    assert model.detector.passes.value == calls, "moving the threshold must not rescore"


def test_verdict_panel_and_history_speak_the_operators_unit(make_window, qtbot):
    """Scores and thresholds shown to the operator are relative to the calibrated threshold; raw in details."""
    from inspector.core.records import Frame

    window = make_window()
    model = stub_model(threshold=0.5)
    window.station.set_model(model, "")
    image = np.full((40, 48, 3), 179, np.uint8)
    result = model.inspect([Frame(image=image, source="camera:0", frame_id=1)], threshold=0.6)[0]
    window.verdict.set_verdict(result, "", current_threshold=0.6)
    relative = result.raw_score / 0.5
    assert window.verdict.score_label.text() == f"score {relative:.3f}"
    assert "decided at threshold 1.200" in window.verdict.detail_label.text()
    assert f"raw {result.raw_score:.4g} / threshold 0.6 raw" in window.verdict.detail_label.text()
    window.history.add_score(result.raw_score)
    window.history.refresh()
    drawn = list(window.history._ok.getData()[1]) + list(window.history._ng.getData()[1])
    assert drawn == [pytest.approx(relative)]
