"""The last-reject picture is visible without scrolling at 1280x800, beside every operator control.

At 1280x800 the operator column had no room left under the controls: the picture was a sliver
at the bottom of a scroll area. On a short window it now sits at the end of the history strip,
and goes back under the controls when the window grows.
"""

from __future__ import annotations

import pytest
from gui_stubs import Recorder
from PySide6.QtCore import QPoint, QRect

from inspector.core.records import Frame


def _shown_rect(widget, area) -> QRect:
    """The part of ``widget`` that lies inside ``area`` (a viewport, the window), in ``area``'s coordinates."""
    box = QRect(widget.mapTo(area, QPoint(0, 0)), widget.size())
    return box.intersected(QRect(QPoint(0, 0), area.size()))


def _window_with_a_reject(make_window, qtbot, real_model, demo_images, size):
    from inspector.core.imageio import read_image

    window = make_window()
    window.resize(*size)
    window.station.set_model(real_model, "")
    path = sorted(demo_images.inspect_dir.iterdir())[-1]
    result = real_model.inspect([Frame(image=read_image(path), source="t", frame_id=0, path=str(path),
                                       timestamp=0.0)], maps="fast")[0]
    painted = Recorder()
    window.frame_painted.connect(painted.record)
    window.on_result(result)
    qtbot.waitUntil(lambda: bool(painted.calls), timeout=3000)
    window.verdict.set_last_reject(result.frame.image, f"{path.name}  score 1.10")
    return window


def _assert_picture_and_controls_visible(window) -> None:
    page = window.station_page
    scroll = page.panel
    assert scroll.verticalScrollBar().maximum() == 0  # nothing to scroll to
    viewport = scroll.viewport()
    o, v = window.operator, window.verdict
    for control in (o.slider, o.spin, o.reset_button, o.raw_label, o.opacity_slider, o.mode_combo,
                    v.mark_good_button, v.mark_defect_button, v.verdict_label):
        box = QRect(control.mapTo(viewport, QPoint(0, 0)), control.size())
        assert control.isVisible() and _shown_rect(control, viewport) == box, (type(control).__name__, box)
    picture = v.last_ng
    area = page.strip if page.reject_in_strip else viewport
    assert picture.isVisible() and v.last_ng_caption.isVisible()
    assert _shown_rect(picture, area).height() >= 100, (_shown_rect(picture, area), area.size())
    assert _shown_rect(picture, window).height() >= 100
    assert picture.visibleRegion().boundingRect().height() >= 100
    assert picture.pixmap().height() >= 95  # scaled to where it is now, not to where it was


@pytest.mark.parametrize("size", [(1280, 800), (1264, 760)])  # 1264x760: what the station opens at on 1280x800
def test_last_reject_is_visible_at_1280x800_without_scrolling(make_window, qtbot, real_model, demo_images, size):
    window = _window_with_a_reject(make_window, qtbot, real_model, demo_images, size)
    page = window.station_page
    qtbot.waitUntil(lambda: page.reject_in_strip, timeout=3000)
    qtbot.wait(50)
    assert window.verdict.reject_view.parentWidget() is page.strip
    _assert_picture_and_controls_visible(window)


def test_last_reject_goes_back_under_the_controls_when_the_window_grows(make_window, qtbot, real_model,
                                                                        demo_images):
    window = _window_with_a_reject(make_window, qtbot, real_model, demo_images, (1280, 800))
    page = window.station_page
    qtbot.waitUntil(lambda: page.reject_in_strip, timeout=3000)
    window.resize(1600, 1000)
    qtbot.waitUntil(lambda: not page.reject_in_strip, timeout=3000)
    qtbot.wait(50)
    assert window.verdict.reject_view.parentWidget() is window.operator.parentWidget()  # the column
    _assert_picture_and_controls_visible(window)
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: page.reject_in_strip, timeout=3000)
    qtbot.wait(50)
    _assert_picture_and_controls_visible(window)
