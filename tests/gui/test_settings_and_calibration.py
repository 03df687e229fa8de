"""Settings persist across sessions; the calibration view applies policies as undoable model swaps."""

from __future__ import annotations

import pytest
from gui_stubs import Recorder, stub_model

from inspector.storage.settings import default_settings_path, load_settings


def test_settings_persist_between_sessions(make_window, qtbot, tmp_path):
    model_file = tmp_path / "m.safetensors"
    model_file.write_text("stub")
    first = make_window()
    first.station.set_model(stub_model(threshold=0.5), str(model_file))
    first.source_bar.set_spec(f"folder:{tmp_path}")
    first.open_source(f"folder:{tmp_path}")
    first.operator.spin.setValue(0.84)  # relative to the calibrated 0.5: raw 0.42
    first.operator.opacity_slider.setValue(80)
    first.operator.mode_combo.setCurrentIndex(first.operator.mode_combo.findData("fast+gradient"))
    first.resize(701, 503)
    first.close()

    settings, warnings = load_settings()
    assert warnings == []
    assert settings.threshold_override == pytest.approx(0.42)  # the debounced edit was flushed on close
    assert settings.last_model == str(model_file)
    assert settings.last_source == f"folder:{tmp_path}"
    assert settings.overlay_opacity == pytest.approx(0.8)
    assert settings.segmentation_mode == "fast+gradient"
    assert settings.window_geometry

    second = make_window(settings=settings)
    assert (second.width(), second.height()) == (701, 503)
    assert second.operator.mode_combo.currentData() == "fast+gradient"
    assert second.source_bar.spec() == f"folder:{tmp_path}"
    second.station.set_model(stub_model(threshold=0.5), str(model_file))
    assert second.station.threshold == pytest.approx(0.42)  # the operator's threshold for this model
    second.station.set_model(stub_model(threshold=0.5, name="other"), "")
    assert second.station.threshold == pytest.approx(0.5)  # another model: its own threshold


def test_broken_settings_file_gives_defaults_and_a_warning(make_window):
    path = default_settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ this is not json")
    settings, warnings = load_settings()
    assert warnings and "not valid JSON" in warnings[0]
    window = make_window(settings=settings)
    assert window.operator.mode_combo.currentData() == "fast"


def test_calibration_policy_swaps_model_and_undo_restores(make_window, qtbot):
    window = make_window()
    good = [0.1 + 0.01 * i for i in range(40)]  # 0.10 .. 0.49
    bad = [0.45, 0.6, 0.7, 0.8]
    original = stub_model(threshold=0.55, good=good, bad=bad)
    window.station.set_model(original, "orig.safetensors")
    view = window.calibration
    assert view.f1_button.isEnabled()

    view.set_threshold(0.305)  # where the engineer drags the line
    frr, escape = view.rates()
    assert frr == pytest.approx(19 / 40)
    assert escape == pytest.approx(0.0)
    view.line.setValue(0.3)
    view.line.sigPositionChangeFinished.emit(view.line)
    assert window.station.threshold == pytest.approx(0.3)

    changed = Recorder()
    window.station.model_changed.connect(changed.record)
    view.frr_target.setValue(5.0)
    view.frr_button.click()
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=3000)
    new = window.station.model
    assert new is not original and new.detector is original.detector
    assert new.calibration.policy == "frr"
    assert new.calibration.expected_frr <= 0.05
    assert window.station.threshold == pytest.approx(new.threshold)
    assert window.undo_action.isEnabled()

    window.undo_action.trigger()
    assert window.station.model is original
    assert not window.undo_action.isEnabled()
