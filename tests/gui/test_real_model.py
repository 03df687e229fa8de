"""The three jobs with a real InspectionModel fitted on real (generated) images."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from gui_stubs import Recorder, stub_model

from inspector.core.imageio import list_images


@pytest.fixture
def scoring_calls(real_model, monkeypatch):
    """Counts the real detector's backbone passes (the instance attribute shadows the method until teardown)."""
    calls = []
    original = real_model.detector._forward

    def counted(x):
        calls.append(len(x))
        return original(x)

    monkeypatch.setattr(real_model.detector, "_forward", counted, raising=False)
    return calls


def test_folder_run_with_real_model_then_threshold_redecides(make_window, qtbot, real_model, scoring_calls,
                                                             demo_images, tmp_path):
    calls = scoring_calls
    window = make_window()
    window.station.set_model(real_model, "")
    done = Recorder()
    window.station.inspection.run_state_changed.connect(done.record)
    overlays = Recorder()
    window.station.segmentation.overlay_ready.connect(overlays.record)
    painted = Recorder()
    window.frame_painted.connect(painted.record)

    window.open_source(f"folder:{demo_images.inspect_dir}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in done.calls, timeout=60000)
    qtbot.waitUntil(lambda: len(window.history.scores) == 10, timeout=5000)
    assert len(calls) == 10, "one backbone pass per frame, fast map included"
    ok, ng = window.history.counts()
    assert ng >= 2, "most of the 4 defective parts are flagged"
    assert window.verdict.verdict in ("OK", "NG")
    rows = sqlite3.connect(tmp_path / "data" / "results.sqlite3").execute(
        "SELECT path, verdict, model_hash FROM decisions").fetchall()
    assert len(rows) == 10 and {r[2] for r in rows} == {real_model.model_hash}
    flagged = {Path(r[0]).name for r in rows if r[1] == "NG"}
    defective = {p.name for p in demo_images.defective}
    assert len(flagged & defective) >= 2
    qtbot.waitUntil(lambda: len(overlays.calls) >= 1, timeout=30000)  # NG frames got overlays
    assert all(result.heatmap is not None and result.anomalous for result, _ in overlays.calls)
    last_path = sqlite3.connect(tmp_path / "data" / "results.sqlite3").execute(
        "SELECT path FROM decisions ORDER BY id DESC LIMIT 1").fetchone()[0]
    qtbot.waitUntil(lambda: bool(painted.calls) and painted.calls[-1][0].frame.path == last_path, timeout=2000)
    shown = painted.calls[-1][0]
    if shown.anomalous:
        assert shown.heatmap is not None, "an NG frame is painted with the fast map its record carries"
    recorded = dict((Path(r[0]).name, r[1]) for r in rows)
    assert window.verdict.verdict == recorded[Path(shown.frame.path).name] == shown.verdict

    scores = window.history.scores
    calibrated = window.station.model.threshold
    window.operator.spin.setValue(float(scores.max()) * 1.01 / calibrated)  # the spin box is relative to it
    qtbot.waitUntil(lambda: window.history.counts() == (10, 0), timeout=2000)
    assert window.verdict.verdict == shown.verdict, "the verdict shown stays the one recorded"
    assert "next frames at threshold" in window.verdict.detail_label.text()
    window.operator.spin.setValue(float(scores.min()) * 0.99 / calibrated)
    qtbot.waitUntil(lambda: window.history.counts() == (0, 10), timeout=2000)
    assert window.verdict.verdict == shown.verdict
    assert len(calls) == 10, "a threshold change re-decides the history; it never rescores"


def test_refit_swaps_model_saves_it_and_undo_restores(make_window, qtbot, real_model, demo_images, tmp_path):
    window = make_window()
    window.station.set_model(real_model, "old.safetensors")
    changed = Recorder()
    window.station.model_changed.connect(changed.record)
    dialog = window.open_refit()
    dialog.reference.set_path(str(demo_images.reference_dir))
    dialog.folds.setValue(3)
    target = tmp_path / "refit.safetensors"
    dialog.save_to.set_path(str(target))
    progress = Recorder()
    window.station.fitter.fit_progress.connect(progress.record)
    failed = Recorder()
    window.station.fitter.fit_failed.connect(failed.record)

    dialog.fit_button.click()
    assert dialog.cancel_button.isEnabled() and not dialog.fit_button.isEnabled()
    qtbot.waitUntil(lambda: bool(changed.calls or failed.calls), timeout=180000)
    assert not failed.calls, failed.calls
    new, path = changed.calls[-1]
    assert new is window.station.model and new is not real_model
    assert path == str(target) and target.is_file()
    assert new.info["n_reference"] == 12
    assert progress.calls, "the dialog saw progress"
    qtbot.waitUntil(lambda: "New model in use" in dialog.status.text(), timeout=2000)
    assert window.undo_action.isEnabled()
    window.undo_action.trigger()
    assert window.station.model is real_model
    dialog.close()


def test_refit_cancel_keeps_model(make_window, qtbot, demo_images):
    window = make_window()
    model = stub_model()
    window.station.set_model(model, "")
    dialog = window.open_refit()
    dialog.reference.set_path(str(demo_images.reference_dir))
    dialog.save_to.set_path("")
    cancelled = Recorder()
    window.station.fitter.fit_cancelled.connect(cancelled.record)
    dialog.fit_button.click()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: bool(cancelled.calls), timeout=60000)
    assert window.station.model is model
    assert "cancelled" in dialog.status.text()
    assert dialog.fit_button.isEnabled()
    dialog.close()


def test_refit_rejects_missing_folder(make_window):
    window = make_window()
    window.station.set_model(stub_model(), "")
    dialog = window.open_refit()
    dialog.reference.set_path("/nonexistent/folder")
    dialog.fit_button.click()
    assert "reference folder" in dialog.status.text()
    assert dialog.fit_button.isEnabled()
    dialog.close()


@pytest.mark.slow
def test_command_line_quit_after_records_frames_and_exits_0(real_model_path, demo_images, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", INSPECTOR_CONFIG_DIR=str(tmp_path / "cfg"),
               INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    command = [sys.executable, "-m", "inspector", "gui", "--model", str(real_model_path),
               "--source", f"folder:{demo_images.inspect_dir}", "--quit-after", "4"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    rows = sqlite3.connect(tmp_path / "data" / "results.sqlite3").execute("SELECT COUNT(*) FROM decisions").fetchone()
    assert rows[0] == 4
    assert (tmp_path / "cfg" / "settings.json").is_file()
    assert len(list_images([demo_images.inspect_dir]).images) == 10


def test_command_line_bad_model_exits_nonzero(demo_images, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", INSPECTOR_CONFIG_DIR=str(tmp_path / "cfg"),
               INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"garbage")
    command = [sys.executable, "-m", "inspector", "gui", "--model", str(bad),
               "--source", f"folder:{demo_images.inspect_dir}", "--quit-after", "2"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode != 0
    assert "cannot load model" in done.stderr


@pytest.mark.slow
def test_command_line_quit_after_with_a_camera_that_never_connects_exits_2_after_the_stated_time(real_model_path,
                                                                                                 tmp_path):
    """``gui --quit-after N`` on an absent camera: exit 2 once no frame came for SOURCE_GIVE_UP_S (10 s)."""
    import time

    from inspector.gui.app import SOURCE_GIVE_UP_S

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", INSPECTOR_CONFIG_DIR=str(tmp_path / "cfg"),
               INSPECTOR_DATA_DIR=str(tmp_path / "data"))
    command = [sys.executable, "-m", "inspector", "gui", "--model", str(real_model_path),
               "--source", "camera:57", "--quit-after", "3"]  # no /dev/video57 on any test machine
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"camera:57: no frame for {SOURCE_GIVE_UP_S:g} s" in done.stderr and "giving up" in done.stderr
    assert SOURCE_GIVE_UP_S <= elapsed < SOURCE_GIVE_UP_S + 60
