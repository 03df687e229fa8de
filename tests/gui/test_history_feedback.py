"""Marking frames from the score-history plot: a click on a point, the same feedback path as the tables."""

from __future__ import annotations

import json
import shutil

from gui_stubs import Recorder
from PySide6.QtCore import QPoint, Qt

from inspector.storage.results_db import ResultStore


def _run_folder(window, qtbot, folder, count: int) -> None:
    done = Recorder()
    window.station.inspection.run_state_changed.connect(done.record)
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in done.calls and len(window.history.scores) == count, timeout=20000)
    qtbot.waitUntil(lambda: window._shown is window._latest and window._latest is not None, timeout=5000)
    window.history.refresh()


def _menu_actions(menu) -> dict[str, object]:
    return {action.text(): action for action in menu.actions() if action.text()}


def test_clicking_a_point_marks_that_frame_through_the_feedback_path(make_window, qtbot, real_model, demo_images,
                                                                      tmp_path):
    window = make_window()
    station = window.station
    model_path = tmp_path / "models" / "line.safetensors"
    station.set_model(real_model, str(model_path))
    parts = tmp_path / "parts"
    parts.mkdir()
    chosen = sorted(demo_images.inspect_dir.iterdir())[:6]
    for path in chosen:
        shutil.copy(path, parts / path.name)
    _run_folder(window, qtbot, parts, len(chosen))
    history = window.history
    qtbot.waitExposed(history)
    assert history.getPlotItem().getViewBox().viewRange()[0][1] < 80  # 6 frames: a 75-frame window, not 300
    kept = Recorder()
    window.feedback.kept.connect(kept.record)

    # Right-click on the third frame's point (the folder is read in name order).
    point = history.point(2)
    assert point is not None and point.path.endswith(chosen[2].name) and point.image is None
    qtbot.mouseClick(history.viewport(), Qt.MouseButton.RightButton, pos=history.view_position(2))
    menu = history.menu
    assert menu is not None and menu.isVisible()
    actions = _menu_actions(menu)
    picture = menu.actions()[0].defaultWidget()  # the frame being marked, at the top of the menu
    assert picture.pixmap().width() == 180
    verdict = "NG" if point.anomalous else "OK"
    assert f"{chosen[2].name}: {verdict}, score {point.raw_score / real_model.threshold:.3f}" in actions
    actions["Mark good (a false reject)"].trigger()
    menu.close()
    qtbot.waitUntil(lambda: len(kept.calls) == 1, timeout=5000)
    folder = tmp_path / "models" / "line.safetensors.feedback"
    assert (folder / "good" / chosen[2].name).read_bytes() == chosen[2].read_bytes()
    assert history.marks() == {2: "good"}

    # A left click on another point: mark defect.
    qtbot.mouseClick(history.viewport(), Qt.MouseButton.LeftButton, pos=history.view_position(4))
    assert history.menu is not None and history.menu.isVisible()
    _menu_actions(history.menu)["Mark defect (an escape)"].trigger()
    history.menu.close()
    qtbot.waitUntil(lambda: len(kept.calls) == 2, timeout=5000)
    assert [p.name for p in (folder / "bad").iterdir()] == [chosen[4].name]
    assert kept.calls[-1][2] == {"good": 1, "bad": 1}
    assert history.marks() == {2: "good", 4: "bad"}

    # Away from every point: no menu.
    history.menu.deleteLater()
    history.menu = None
    corner = history.view_position(0) + QPoint(0, -60)
    qtbot.mouseClick(history.viewport(), Qt.MouseButton.RightButton, pos=corner)
    assert history.menu is None

    # Recorded like the live view's marks, with what was decided and where it was marked from.
    def audit() -> list[dict]:
        with ResultStore(tmp_path / "data" / "results.sqlite3") as store:
            return list(reversed(store.query_audit(action="feedback")))

    qtbot.waitUntil(lambda: len(audit()) == 2, timeout=5000)
    first, second = audit()
    assert (first["old_value"], first["new_value"]) == (verdict, "good")
    assert (second["old_value"], second["new_value"]) == ("NG" if history.point(4).anomalous else "OK", "bad")
    detail = json.loads(first["detail"])
    assert detail["path"] == point.path and detail["marked_from"] == "score history"
    assert first["old_model_hash"] == real_model.model_hash


def test_camera_frames_keep_their_pixels_for_marking_within_a_budget(make_window, qtbot, real_model, monkeypatch):
    import numpy as np

    from inspector.core.records import Frame, InspectionResult
    from inspector.gui import score_history

    window = make_window()
    window.station.set_model(real_model, "")
    history = window.history
    frame_bytes = 96 * 96 * 3
    monkeypatch.setattr(score_history, "IMAGE_BUDGET_BYTES", 3 * frame_bytes)
    rng = np.random.default_rng(0)
    for i in range(5):
        image = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
        history.add_result(InspectionResult(Frame(image, "camera:0", i), 1.0, 0.5, 2.0, False, real_model.model_hash))
    assert [history.point(i).markable for i in range(5)] == [False, False, True, True, True]
    kept = Recorder()
    window.feedback.kept.connect(kept.record)
    messages = Recorder()
    window.station.message.connect(messages.record)
    assert not window.feedback.mark_point(history.point(0), "good")
    assert "no longer held" in messages.calls[-1][0]
    menu = history.open_menu(0)
    assert not _menu_actions(menu)["Mark good (a false reject)"].isEnabled()
    assert window.feedback.mark_point(history.point(4), "bad")
    qtbot.waitUntil(lambda: bool(kept.calls), timeout=5000)
    label, path, _ = kept.calls[-1]
    assert label == "bad" and path.endswith("frame-000004.png")
