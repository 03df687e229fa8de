"""Slow model code never runs on the GUI thread: the event loop keeps beating while a slow model inspects."""

from __future__ import annotations

import time

from gui_stubs import FlakyCapture, Recorder, stub_model
from PySide6.QtCore import QTimer

from inspector.sources.camera import CameraSource


def test_event_loop_keeps_beating_while_a_slow_model_inspects(make_window, qtbot):
    camera = FlakyCapture()
    window = make_window(source_factory=lambda spec: CameraSource(0, capture_factory=lambda: camera),
                         segmentation_mode="fast+gradient")
    slow = stub_model(delay=0.3)  # 300 ms a frame: any of it on the GUI thread shows as a stall
    assert slow.supported_segmenters == ("fast", "gradient")
    window.station.set_model(slow, "")
    results = Recorder()
    window.station.inspection.result_ready.connect(results.record)
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))  # GUI thread: QTimer lives here
    heartbeat.start()
    window.open_source("camera:0", start=True)
    qtbot.waitUntil(lambda: len(results.calls) >= 6, timeout=15000)
    heartbeat.stop()
    window.station.pause()
    gaps = [b - a for a, b in zip(beats, beats[1:])]
    assert len(gaps) > 50
    assert max(gaps) < 0.2, f"the GUI event loop stalled for {max(gaps) * 1000:.0f} ms"
