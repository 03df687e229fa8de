"""The calibration view's known-bad folder and recalibration on recent parts, on the real window and model."""

from __future__ import annotations

import json
import shutil

import numpy as np
from gui_stubs import Recorder
from PySide6.QtWidgets import QFileDialog, QMessageBox

from inspector.core.imageio import read_image
from inspector.storage.results_db import ResultStore


def _calibration_rows(tmp_path) -> list[dict]:
    with ResultStore(tmp_path / "data" / "results.sqlite3") as store:
        return list(reversed(store.query_audit(action="calibration")))


def test_a_known_bad_folder_joins_the_calibration_and_is_undoable(make_window, qtbot, real_model, demo_images,
                                                                  tmp_path, monkeypatch):
    window = make_window()
    station = window.station
    station.set_model(real_model, "")
    bad = tmp_path / "bad"
    bad.mkdir()
    for path in demo_images.defective:
        shutil.copy(path, bad / path.name)
    (bad / "notes.txt").write_text("not an image")
    parts = tmp_path / "parts"
    parts.mkdir()
    goods = [p for p in sorted(demo_images.inspect_dir.iterdir()) if p not in demo_images.defective]
    for path in goods[:4]:
        shutil.copy(path, parts / path.name)
    done = Recorder()
    station.inspection.run_state_changed.connect(done.record)
    window.open_source(f"folder:{parts}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in done.calls and len(window.history.scores) == 4, timeout=20000)
    window.tabs.setCurrentWidget(window.calibration)
    view = window.calibration
    assert view._recent.size == 4
    assert view.bad_button.isEnabled() and not view.f1_button.isEnabled()
    assert view.escape_label.text() == "unknown: no bad images"
    assert "escape rate unknown" in window.operator.calibration_label.text()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(bad))
    changed = Recorder()
    station.model_changed.connect(changed.record)
    messages = Recorder()
    station.message.connect(messages.record)

    view.bad_button.click()
    assert not view.bad_button.isEnabled()  # busy while the worker scores
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=30000)
    new = station.model
    assert new.detector is real_model.detector and new is not real_model
    assert len(new.calibration.bad_scores) == len(demo_images.defective) == 4
    expected = real_model.score_images([read_image(p) for p in sorted(bad.glob("*.png"))])
    np.testing.assert_allclose(sorted(new.calibration.bad_scores), sorted(expected), rtol=1e-5)
    assert new.threshold == real_model.threshold  # frr policy: the threshold stays, the escape rate is new
    assert new.calibration.escape is not None
    assert view.f1_button.isEnabled() and view.bad_button.isEnabled()
    assert view._recent.size == 4  # same held-out good scores: the drift watch keeps its recent frames
    qtbot.waitUntil(lambda: any("4 known-bad images from bad" in m for (m,) in messages.calls), timeout=2000)
    assert "escapes" not in view.escape_label.text() and "%" in view.escape_label.text()
    panel_note = window.operator.calibration_label.text()
    assert "unknown" not in panel_note and f"escape {new.calibration.escape.rate * 100:.1f} %" in panel_note
    qtbot.waitUntil(lambda: len(_calibration_rows(tmp_path)) == 1, timeout=5000)
    detail = json.loads(_calibration_rows(tmp_path)[0]["detail"])
    assert detail["reason"] == f"known-bad folder {bad}: 4 images"
    window.undo_action.trigger()
    assert station.model is real_model


def test_recalibrate_on_the_last_frames_confirmed_good(make_window, qtbot, real_model, demo_images, tmp_path,
                                                       monkeypatch):
    window = make_window()
    station = window.station
    station.set_model(real_model, "")
    parts = tmp_path / "parts"
    parts.mkdir()
    goods = [p for p in sorted(demo_images.inspect_dir.iterdir()) if p not in demo_images.defective]
    for copy in range(4):  # 24 frames of good parts
        for path in goods:
            shutil.copy(path, parts / f"{copy}-{path.name}")
    done = Recorder()
    station.inspection.run_state_changed.connect(done.record)
    window.open_source(f"folder:{parts}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in done.calls and len(window.history.scores) == 24, timeout=30000)
    view = window.calibration
    window.tabs.setCurrentWidget(view)
    assert view.recent_button.isEnabled() and view.recent_count.value() == 24
    window.history._mark(window.history.point(23), "bad")  # the operator said the last one was a defect
    view.recent_count.setValue(22)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes)
    changed = Recorder()
    station.model_changed.connect(changed.record)

    view.recent_button.click()
    assert asked and "last 21 parts (1 marked defect are left out)" in asked[0]
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=10000)
    new = station.model
    scores = window.history.scores
    np.testing.assert_allclose(new.calibration.good_scores, scores[2:23])
    assert new.detector is real_model.detector and new.calibration.policy == real_model.calibration.policy
    assert window.drift_watch.monitor.held_out.tolist() == list(new.calibration.good_scores)  # the watch uses them now
    assert len(window.history.scores) == 24  # same detector: the history stays
    qtbot.waitUntil(lambda: len(_calibration_rows(tmp_path)) == 1, timeout=5000)
    detail = json.loads(_calibration_rows(tmp_path)[0]["detail"])
    assert detail["reason"] == "recalibrated on the last 21 frames confirmed good (1 marked defect left out)"

    # "No" changes nothing.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert not window.calibration_actions.recalibrate_on_recent(22)
    assert station.model is new
