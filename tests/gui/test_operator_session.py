"""Defects an operator reported after half an hour at the station, on the real window and model facade."""

from __future__ import annotations

from gui_stubs import Recorder, gray_folder, stub_model


def _run(window, qtbot, folder) -> None:
    states = Recorder()
    window.station.inspection.run_state_changed.connect(states.record)
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in states.calls, timeout=10000)


def test_after_undo_the_verdict_of_the_other_models_last_frame_is_not_shown(make_window, qtbot, tmp_path):
    window = make_window()
    first = stub_model(threshold=0.5)
    window.station.set_model(first, "first.safetensors")
    gray_folder(tmp_path / "a", [60, 210])  # the last one is NG
    _run(window, qtbot, tmp_path / "a")
    qtbot.waitUntil(lambda: window.verdict.verdict == "NG", timeout=5000)

    refit = stub_model(threshold=0.6, name="refit")
    window.station.set_model(refit, "", reason="refitted")
    assert window.verdict.verdict == "—"  # the frame on screen was decided by the previous model
    assert "no frame decided by the model in use" in window.verdict.detail_label.text()
    gray_folder(tmp_path / "b", [220])
    _run(window, qtbot, tmp_path / "b")
    qtbot.waitUntil(lambda: window._shown is not None and window._shown.model_hash == refit.model_hash
                    and window.verdict.verdict == "NG", timeout=5000)

    window.undo_action.trigger()
    assert window.station.model is first
    assert window.verdict.verdict == "—", "the refit's NG is not a verdict of the model in use"
    assert "no frame decided by the model in use" in window.verdict.detail_label.text()
    assert not window.verdict.mark_good_button.isEnabled()
    window.station.set_threshold(0.55)  # a re-render (threshold change) does not bring it back
    assert window.verdict.verdict == "—"


def test_status_bar_says_paused_while_the_source_is_paused(make_window, qtbot, tmp_path):
    window = make_window()
    window.station.set_model(stub_model(threshold=0.5, delay=0.05), "")  # 40 frames: 2 s, paused long before
    gray_folder(tmp_path / "parts", [60] * 40)
    states = Recorder()
    window.station.inspection.run_state_changed.connect(states.record)
    window.open_source(f"folder:{tmp_path / 'parts'}")
    qtbot.waitUntil(lambda: ("paused",) in states.calls, timeout=5000)
    assert "PAUSED" in window.status.source_label.text() and "LIVE" not in window.status.source_label.text()

    window.station.start()
    qtbot.waitUntil(lambda: "LIVE" in window.status.source_label.text(), timeout=5000)
    window.toggle_run()  # Space: pause
    qtbot.waitUntil(lambda: states.calls[-1] == ("paused",), timeout=5000)
    assert "PAUSED" in window.status.source_label.text() and "LIVE" not in window.status.source_label.text()
    window.station.stop()
    qtbot.waitUntil(lambda: states.calls[-1] == ("idle",), timeout=5000)
    assert "LIVE" not in window.status.source_label.text()
