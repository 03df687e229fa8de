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


def _saved_stub(path, **kwargs) -> str:
    stub_model(**kwargs).save(path)
    return str(path)


def test_opening_another_model_asks_before_discarding_an_unsaved_recalibration(make_window, qtbot, tmp_path,
                                                                              monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from inspector.calibration.policies import calibrate
    from inspector.pipeline.model import InspectionModel

    first = _saved_stub(tmp_path / "first.safetensors", threshold=0.5)
    other = _saved_stub(tmp_path / "other.safetensors", threshold=0.7, name="other")
    window = make_window()
    station = window.station
    station.set_model(InspectionModel.load(first), first)
    asked: list[str] = []
    answer = [QMessageBox.StandardButton.Cancel]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or answer[0])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (other, ""))

    recalibrated = calibrate(station.model.calibration.good_scores, policy="frr", target=0.2)
    station.apply_calibration(recalibrated)
    qtbot.waitUntil(lambda: station.model.calibration is recalibrated, timeout=5000)
    in_use = station.model
    window.open_model_action.trigger()
    assert len(asked) == 1 and "not saved" in asked[0]
    qtbot.wait(200)
    assert station.model is in_use  # cancelled: the recalibrated model stays

    answer[0] = QMessageBox.StandardButton.Discard
    window.open_model_action.trigger()
    qtbot.waitUntil(lambda: station.model_path == other, timeout=5000)
    assert len(asked) == 2

    window.open_model_action.trigger()  # nothing unsaved now: no question
    qtbot.waitUntil(lambda: station.model is not None and station.model_path == other, timeout=5000)
    assert len(asked) == 2


def test_save_in_the_question_writes_the_operators_threshold_to_the_model_file_first(make_window, qtbot, tmp_path,
                                                                                     monkeypatch):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from inspector.pipeline.model import InspectionModel

    first = _saved_stub(tmp_path / "first.safetensors", threshold=0.5)
    other = _saved_stub(tmp_path / "other.safetensors", threshold=0.7, name="other")
    kept = str(tmp_path / "kept.safetensors")
    window = make_window()
    station = window.station
    station.set_model(InspectionModel.load(first), first)
    station.set_threshold(0.6)  # the operator's threshold: only in the settings, for this file
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Save)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (other, ""))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (kept, ""))
    window.open_model_action.trigger()
    assert len(asked) == 1 and "threshold" in asked[0]
    qtbot.waitUntil(lambda: station.model_path == other, timeout=10000)
    saved = InspectionModel.load(kept)
    assert saved.threshold == 0.6 and saved.calibration.policy == "manual"


def test_refit_dialog_prefills_the_folds_the_model_in_use_was_fitted_with(make_window, demo_images):
    from inspector.core.imageio import list_images, read_image
    from inspector.pipeline.model import InspectionModel

    images = [read_image(p) for p in list_images([demo_images.reference_dir]).images]
    default = InspectionModel.fit(images, detector="gaussian", image_size=64, device="cpu",
                                  reference_dir=str(demo_images.reference_dir))  # the fit's own rule
    assert default.info["folds"] == len(images)  # leave-one-out
    window = make_window()
    window.station.set_model(default, "")
    dialog = window.open_refit()
    assert dialog.folds.text() == f"auto (the model in use: {len(images)})", dialog.folds.text()
    assert dialog.request().folds is None  # refitted by the same rule, not with 5 folds
    dialog.close()

    older = stub_model()  # an older file: no fit request, the folds its info records
    older.info["folds"] = 8
    window.station.set_model(older, "")
    dialog = window.open_refit()  # reopened after the swap: filled in for the model now in use
    assert dialog.model_in_use is older and dialog.folds.value() == 8
    dialog.reference.set_path(str(demo_images.reference_dir))
    assert dialog.request().folds == 8
    dialog.close()


def test_batch_rows_scored_by_the_previous_model_are_shown_stale_after_a_swap(make_window, qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from inspector.gui.batch_table import SCORE, VERDICT

    folder = tmp_path / "lot"
    gray_folder(folder, [60, 200, 70])
    window = make_window()
    first = stub_model(threshold=0.5)
    window.station.set_model(first, "")
    finished = Recorder()
    window.station.batch.batch_finished.connect(finished.record)
    window.batch.run(str(folder))
    qtbot.waitUntil(lambda: len(finished.calls) == 1, timeout=10000)
    table, proxy = window.batch.model, window.batch.proxy
    assert table.counts() == {"OK": 2, "NG": 1, "ERROR": 0}

    window.station.set_model(stub_model(threshold=0.6, name="refit"), "", reason="refitted")
    scores = [proxy.data(proxy.index(r, SCORE)) for r in range(proxy.rowCount())]
    verdicts = [proxy.data(proxy.index(r, VERDICT)) for r in range(proxy.rowCount())]
    assert scores == ["—"] * 3 and verdicts == ["—"] * 3  # nothing of the previous model under the new name
    assert "scored by another model" in proxy.data(proxy.index(0, SCORE), Qt.ItemDataRole.ToolTipRole)
    assert table.counts() == {"OK": 0, "NG": 0, "ERROR": 0}
    assert "3 scored by another model" in window.batch.summary.text()

    window.batch.rescore_all()
    qtbot.waitUntil(lambda: len(finished.calls) == 2, timeout=10000)
    assert table.stale_count() == 0 and table.counts() == {"OK": 2, "NG": 1, "ERROR": 0}
    assert all(proxy.data(proxy.index(r, SCORE)) != "—" for r in range(proxy.rowCount()))


def _audit_rows(tmp_path) -> list[dict]:
    from inspector.storage.results_db import ResultStore

    with ResultStore(tmp_path / "data" / "results.sqlite3") as store:
        return list(reversed(store.query_audit()))


def test_restoring_the_saved_threshold_at_a_start_is_no_audit_row(make_window, qtbot, tmp_path):
    from inspector.storage.settings import load_settings

    path = _saved_stub(tmp_path / "line.safetensors", threshold=0.5)
    settings = load_settings()[0]
    settings.last_model, settings.threshold_override = path, 0.42  # as the last session left them
    window = make_window(settings=settings)
    window.audit._timer.setInterval(100)
    recorded = Recorder()
    window.audit.recorded.connect(recorded.record)
    window.station.load_model(path)  # what the start does with the last model
    qtbot.waitUntil(lambda: window.station.threshold == 0.42 and len(recorded.calls) == 1, timeout=5000)
    qtbot.wait(400)  # past the threshold's settle time
    window.close()
    assert [r["action"] for r in _audit_rows(tmp_path)] == ["model_swap"]


def test_a_refit_that_resets_the_operators_threshold_is_an_audit_row(make_window, qtbot, tmp_path):
    from inspector.workers.fit_worker import FitRequest

    window = make_window()
    window.audit._timer.setInterval(100)
    station = window.station
    recorded = Recorder()
    window.audit.recorded.connect(recorded.record)
    station.set_model(stub_model(threshold=0.5), "line.safetensors")
    station.set_threshold(0.6)
    qtbot.waitUntil(lambda: len(recorded.calls) == 2, timeout=5000)  # the swap, the settled threshold
    gray_folder(tmp_path / "refs", [60, 70, 80, 90, 100, 110])
    station.fit(FitRequest(reference_dir=str(tmp_path / "refs"), detector="test-brightness"))
    qtbot.waitUntil(lambda: len(recorded.calls) == 4, timeout=10000)
    assert station.operator_threshold is None
    window.close()
    rows = _audit_rows(tmp_path)
    assert [r["action"] for r in rows] == ["model_swap", "threshold", "refit", "threshold"]
    reset = rows[-1]
    assert reset["old_value"] == "0.6" and reset["new_value"].startswith("calibrated")
    assert "reset by the refit" in reset["detail"]
    assert reset["old_model_hash"] == rows[2]["old_model_hash"] and reset["new_model_hash"] == rows[2]["new_model_hash"]


def test_a_long_status_message_is_cut_at_the_right_with_the_whole_text_as_tooltip(make_window, qtbot):
    window = make_window()
    window.resize(1000, 700)
    message = "folder:/data/line3/lot-2026-12-03: " + "all files were already decided by this model " * 6 + "END"
    window.station.message.emit(message)
    label = window.status.message_label
    qtbot.waitUntil(lambda: label.isVisible() and label.text() != "", timeout=2000)
    shown = label.text()
    assert shown.startswith("folder:/data/line3/lot-2026-12-03: all files") and shown.endswith("…")
    assert "END" not in shown
    assert label.toolTip() == message and window.status.currentMessage() == message
    assert 0 <= label.geometry().left() and label.geometry().right() < window.status.model_label.geometry().left()


def test_the_batch_folder_is_remembered_between_starts(make_window, qtbot, tmp_path):
    folder = tmp_path / "lot"
    gray_folder(folder, [60, 200])
    first = make_window()
    first.station.set_model(stub_model(threshold=0.5), "")
    finished = Recorder()
    first.station.batch.batch_finished.connect(finished.record)
    first.batch.run(str(folder))
    qtbot.waitUntil(lambda: bool(finished.calls), timeout=10000)
    first.close()

    second = make_window()  # the next start
    assert second.batch.folder.path == str(folder)
    second.batch.folder.set_path("")  # cleared: the last folder stays remembered
    second.close()
    assert make_window().batch.folder.path == str(folder)


def test_a_broken_settings_file_gives_an_empty_batch_folder(make_window):
    from inspector.storage.settings import default_settings_path

    default_settings_path().parent.mkdir(parents=True, exist_ok=True)
    default_settings_path().write_text("{ not json")
    assert make_window().batch.folder.path == ""


def test_drift_tooltips_write_small_p_values_as_below_a_thousandth(make_window):
    import re

    import numpy as np

    from inspector.core.records import Frame

    window = make_window()
    model = stub_model(threshold=0.6, good=np.linspace(0.2, 0.45, 40))
    window.station.set_model(model, "refs.safetensors")
    frames = [Frame(image=np.full((40, 48, 3), 140, np.uint8), source="camera:0", frame_id=i) for i in range(60)]
    for result in model.inspect(frames):  # good-looking parts, all above every reference: p is tiny
        window.on_result(result)
    tip = window.status.drift_label.toolTip()
    assert window.status.drift_text == "REFS DO NOT MATCH"
    assert "p < 0.001" in tip, tip
    assert not re.search(r"p = (0\b|[0-9.]+e)", tip), tip
    assert "p < 0.001" in window.calibration.recent_label.text()

    from inspector.calibration.drift import p_text

    assert [p_text(p) for p in (0.0, 3e-07, 0.04)] == ["p < 0.001", "p < 0.001", "p = 0.04"]


def test_the_region_dialog_says_that_its_refit_also_uses_the_operators_marks(make_window, qtbot, tmp_path):
    import numpy as np

    window = make_window()
    window.station.set_model(stub_model(threshold=0.5), str(tmp_path / "part.safetensors"))
    dialog = window.open_regions(np.full((40, 48, 3), 90, np.uint8))
    assert not dialog.refit_note.isVisible() and dialog.refit_note.text() == ""  # no marks yet: nothing to say
    dialog.close()

    gray_folder(tmp_path / "a", [210])  # NG
    _run(window, qtbot, tmp_path / "a")
    qtbot.waitUntil(lambda: window.verdict.verdict == "NG", timeout=5000)
    assert window.mark_current("good")
    qtbot.waitUntil(lambda: window.feedback.marked_counts()["good"] == 1, timeout=5000)
    dialog = window.open_regions(np.full((40, 48, 3), 90, np.uint8))
    qtbot.waitExposed(dialog)
    assert dialog.refit_note.isVisible() and "1 marked good" in dialog.refit_note.text()
    assert "1 marked good" in dialog.refit_button.toolTip()
