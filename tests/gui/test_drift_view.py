"""The calibration view draws the recent parts over the held-out scores, with the drift watch's verdict."""

from __future__ import annotations

import numpy as np
from gui_stubs import stub_model

from inspector.core.records import Frame
from inspector.gui.theme import NG_COLOR, OK_COLOR


def gray(level: int) -> np.ndarray:
    return np.full((40, 48, 3), level, np.uint8)


def _feed(window, model, level: int, count: int) -> None:
    frames = [Frame(image=gray(level), source="camera:0", frame_id=i) for i in range(count)]
    for result in model.inspect(frames):
        window.on_result(result)


def _legend_labels(view) -> list[str]:
    return [label.text for _, label in view.legend.items]


def test_recent_parts_that_do_not_match_the_references_show_as_drift(make_window):
    window = make_window()
    model = stub_model(threshold=0.6, good=np.linspace(0.2, 0.45, 40))
    window.station.set_model(model, "refs.safetensors")
    view = window.calibration
    assert _legend_labels(view) == ["good (held-out)"]  # no "known bad" entry without bad images
    assert "none yet" in view.recent_label.text()

    _feed(window, model, level=140, count=30)  # brighter than every reference, still below the threshold
    assert view._recent.size == 30
    assert "30" in view.recent_label.text() and "do not represent" in view.recent_label.text()
    assert NG_COLOR in view.recent_label.styleSheet()
    x, y = view.recent_curve.getData()
    assert y.sum() == 40  # scaled to the 40 held-out scores
    assert x[np.argmax(y)] > 0.5  # the recent parts sit right of every held-out score
    assert any(label.startswith("recent parts (30") for label in _legend_labels(view))

    other = stub_model(threshold=0.6, good=np.linspace(0.2, 0.45, 40), name="other")
    window.station.set_model(other, "other.safetensors")  # a new model: the watch starts again
    assert view._recent.size == 0 and "none yet" in view.recent_label.text()
    assert _legend_labels(view) == ["good (held-out)"]


def test_recent_parts_like_the_references_show_no_drift(make_window):
    window = make_window()
    rng = np.random.default_rng(3)
    good = np.sort(rng.uniform(0.2, 0.45, 60))
    model = stub_model(threshold=0.6, good=good)
    window.station.set_model(model, "refs.safetensors")
    view = window.calibration
    for level in rng.uniform(0.2, 0.45, 30) * 255:
        _feed(window, model, level=int(round(level)), count=1)
    assert view._recent.size == 30
    assert OK_COLOR in view.recent_label.styleSheet(), view.recent_label.text()


def test_status_bar_says_refs_do_not_match_only_when_good_frames_shifted(make_window):
    window = make_window()
    model = stub_model(threshold=0.6, good=np.linspace(0.2, 0.45, 40))
    window.station.set_model(model, "refs.safetensors")
    _feed(window, model, level=140, count=30)  # good-looking frames, all above every reference
    assert window.status.drift_text == "REFS DO NOT MATCH"

    other = stub_model(threshold=0.6, good=np.linspace(0.2, 0.45, 40), name="other")
    window.station.set_model(other, "other.safetensors")
    rng = np.random.default_rng(5)
    for level in rng.uniform(0.2, 0.45, 20) * 255:  # like the references ...
        _feed(window, other, level=int(round(level)), count=1)
    _feed(window, other, level=250, count=10)  # ... and a burst of rejects
    assert window.status.drift_text == "MANY REJECTS"
    assert "more rejects than the references predict" in window.status.drift_label.toolTip()
