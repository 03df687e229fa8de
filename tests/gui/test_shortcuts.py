"""Bench keyboard shortcuts: S steps one frame, Space starts and pauses."""

from __future__ import annotations

from gui_stubs import Recorder, gray_folder, stub_model
from PySide6.QtCore import Qt


def test_step_and_space(make_window, qtbot, tmp_path):
    folder = tmp_path / "parts"
    gray_folder(folder, [60, 70, 80, 90, 100])
    window = make_window()
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=2000)
    window.station.set_model(stub_model(), "")
    states = Recorder()
    window.station.inspection.run_state_changed.connect(states.record)
    window.open_source(f"folder:{folder}")
    qtbot.waitUntil(lambda: ("paused",) in states.calls, timeout=3000)

    window.frame_view.setFocus()
    qtbot.keyClick(window, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: len(window.history.scores) == 1, timeout=3000)
    qtbot.wait(100)
    assert len(window.history.scores) == 1, "S inspects exactly one frame"
    qtbot.waitUntil(lambda: window.frame_view.caption.textItem.toPlainText() == "img_000.png", timeout=2000)

    qtbot.keyClick(window, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: ("finished",) in states.calls, timeout=5000)
    assert len(window.history.scores) == 5
    assert window.run_action.text() == "Start"
