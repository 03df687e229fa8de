"""A live camera that fails mid-run: the window says so, then recovers by itself."""

from __future__ import annotations

from gui_stubs import FlakyCapture, Recorder, stub_model

from inspector.sources.spec import parse_source_spec
from inspector.sources.camera import CameraSource


def test_camera_lost_then_recovers(make_window, qtbot):
    captures = [FlakyCapture(fail_after=8), FlakyCapture(opened=False), FlakyCapture()]
    opened = []

    def next_capture():
        capture = captures[min(len(opened), len(captures) - 1)]
        opened.append(capture)
        return capture

    def factory(spec: str):
        if spec.startswith("camera:"):
            return CameraSource(0, capture_factory=next_capture, backoff_initial=0.2, backoff_max=0.2)
        return parse_source_spec(spec)

    window = make_window(source_factory=factory)
    window.station.set_model(stub_model(threshold=0.5), "")
    labels = Recorder()
    window.station.inspection.source_state_changed.connect(labels.record)
    results = Recorder()
    window.station.inspection.result_ready.connect(results.record)

    window.open_source("camera:0", start=True)
    qtbot.waitUntil(lambda: len(results.calls) >= 5, timeout=5000)
    qtbot.waitUntil(lambda: window.status.state == "lost", timeout=5000)
    assert "CAMERA LOST" in window.status.source_label.text()
    assert window.frame_view.banner_text == "CAMERA LOST"
    assert window.verdict.verdict == "—", "no stale verdict while no part is inspected"
    seen = len(results.calls)

    qtbot.waitUntil(lambda: window.status.state == "running" and len(results.calls) > seen + 3, timeout=8000)
    assert "LIVE" in window.status.source_label.text()
    assert window.frame_view.banner_text == ""
    qtbot.waitUntil(lambda: window.verdict.verdict == "OK", timeout=2000)
    states = [state for state, _ in labels.calls]
    assert states.index("lost") < len(states) - 1 - states[::-1].index("running")
    assert len(opened) >= 3, "the source reconnected by itself"
    window.station.pause()
