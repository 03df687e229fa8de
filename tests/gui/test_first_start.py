"""First start: the demo build shows its progress and can be cancelled; every operator control fits 1280x800."""

from __future__ import annotations

from gui_stubs import Recorder
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QPushButton

from inspector.core.records import Frame


def test_demo_build_shows_progress_and_cancels(make_window, qtbot):
    window = make_window()
    station = window.station
    cancelled, ready = Recorder(), Recorder()
    station.models.demo_cancelled.connect(cancelled.record)
    station.demo_ready.connect(ready.record)
    messages = Recorder()
    station.message.connect(messages.record)

    station.prepare_demo()  # the data dir is empty: the real build starts (images first)
    qtbot.waitUntil(lambda: window.demo_progress.dialog is not None and window.demo_progress.dialog.isVisible(),
                    timeout=20000)
    dialog = window.demo_progress.dialog
    qtbot.waitUntil(lambda: "Preparing the demo (first start only): " in dialog.labelText(), timeout=5000)
    assert dialog.maximum() > 1
    dialog.findChild(QPushButton).click()
    qtbot.waitUntil(lambda: bool(cancelled.calls), timeout=20000)
    assert window.demo_progress.dialog is None and window.demo_progress.cancelled
    assert station.model is None and not ready.calls
    assert any("demo preparation cancelled" in call[0] for call in messages.calls)


def test_every_operator_control_is_visible_at_1280x800(make_window, qtbot, real_model, demo_images, tmp_path):
    from inspector.core.imageio import read_image

    window = make_window()
    window.resize(1280, 800)
    station = window.station
    station.set_model(real_model, "")
    path = sorted(demo_images.inspect_dir.iterdir())[0]
    result = real_model.inspect([Frame(image=read_image(path), source="t", frame_id=0, path=str(path),
                                       timestamp=0.0)], maps="fast")[0]
    window.on_result(result)
    painted = Recorder()
    window.frame_painted.connect(painted.record)
    qtbot.waitUntil(lambda: bool(painted.calls), timeout=3000)
    qtbot.wait(50)
    window.grab().save(str(tmp_path / "station-1280x800.png"))
    scroll = window.operator.parentWidget().parentWidget().parentWidget()
    assert scroll.verticalScrollBar().maximum() == 0  # nothing to scroll to
    viewport = scroll.viewport()
    visible = QRect(QPoint(0, 0), viewport.size())
    o = window.operator
    controls = [o.slider, o.spin, o.reset_button, o.raw_label, o.opacity_slider, o.mode_combo,
                window.verdict.mark_good_button, window.verdict.mark_defect_button, window.verdict.verdict_label]
    for control in controls:
        top_left = control.mapTo(viewport, QPoint(0, 0))
        box = QRect(top_left, control.size())
        assert control.isVisible() and visible.contains(box), (type(control).__name__, box, visible)
