"""Operator feedback in the window: mark good / mark defect on the live view and the batch table, refit with it."""

from __future__ import annotations

import shutil
from pathlib import Path

from gui_stubs import Recorder
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QFileDialog, QPushButton

from inspector.storage.results_db import ResultStore


def _run_folder(window, qtbot, folder) -> None:
    done = Recorder()
    window.station.inspection.run_state_changed.connect(done.record)
    painted = Recorder()
    window.frame_painted.connect(painted.record)
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in done.calls, timeout=15000)
    qtbot.waitUntil(lambda: window._shown is not None and painted.calls
                    and painted.calls[-1][0] is window._latest, timeout=5000)


def _has_onnxruntime() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _audit(tmp_path, action: str) -> list[dict]:
    with ResultStore(tmp_path / "data" / "results.sqlite3") as store:
        return list(reversed(store.query_audit(action=action)))


def test_marks_on_live_view_are_kept_recorded_and_refit_is_undoable(make_window, qtbot, real_model, demo_images,
                                                                    tmp_path, monkeypatch):
    window = make_window()
    station = window.station
    model_path = tmp_path / "models" / "line.safetensors"
    station.set_model(real_model, str(model_path))
    parts = tmp_path / "parts"
    parts.mkdir()
    goods = sorted(p for p in demo_images.inspect_dir.iterdir() if p not in demo_images.defective)[:2]
    for path in goods:
        shutil.copy(path, parts / path.name)
    _run_folder(window, qtbot, parts)
    shown = window._shown
    kept = Recorder()
    window.feedback.kept.connect(kept.record)

    qtbot.keyClick(window, Qt.Key.Key_G)  # the shortcut
    qtbot.waitUntil(lambda: len(kept.calls) == 1, timeout=5000)
    folder = tmp_path / "models" / "line.safetensors.feedback"
    good_copy = folder / "good" / (parts / shown.frame.path).name
    assert good_copy.read_bytes() == (parts / shown.frame.path).read_bytes()
    window.verdict.mark_defect_button.click()  # the button: the operator changed their mind
    qtbot.waitUntil(lambda: len(kept.calls) == 2, timeout=5000)
    assert [p.name for p in (folder / "bad").iterdir()] == [good_copy.name] and not good_copy.exists()
    assert kept.calls[-1][2] == {"good": 0, "bad": 1}  # one image, one label
    qtbot.keyClick(window, Qt.Key.Key_G)
    qtbot.keyClick(window, Qt.Key.Key_G)  # twice: still one copy
    qtbot.waitUntil(lambda: len(kept.calls) == 4, timeout=5000)
    assert [p.name for p in (folder / "good").iterdir()] == [good_copy.name] and not any((folder / "bad").iterdir())
    qtbot.waitUntil(lambda: len(_audit(tmp_path, "feedback")) == 4, timeout=5000)
    rows = _audit(tmp_path, "feedback")
    assert rows[0]["old_value"] == ("NG" if shown.anomalous else "OK") and rows[0]["new_value"] == "good"
    assert shown.frame.path in rows[0]["detail"] and rows[0]["old_model_hash"] == real_model.model_hash
    assert '"marked_from": "live view"' in rows[0]["detail"]

    # The fixture's model does not record its reference folder: the window asks for it.
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda *a, **k: asked.append(a) or str(demo_images.reference_dir))
    changed = Recorder()
    station.model_changed.connect(changed.record)
    request = window.refit_with_feedback()
    assert asked and request.feedback_folder == str(folder)
    assert window.feedback.progress is not None and window.feedback.progress.isVisible()
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=60000)
    new = station.model
    assert new is not real_model and new.info["n_reference"] == 12 + 1
    # The refitted model decides on the same runtime as a file the station loads (default auto).
    assert new.runtime == ("onnxruntime" if _has_onnxruntime() else "torch")
    assert new.info["reference_dir"] == str(demo_images.reference_dir.resolve())
    # fit_finished reaches the station and the progress dialog as two queued calls: wait for the second.
    qtbot.waitUntil(lambda: window.feedback.progress is None, timeout=5000)
    assert window.undo_action.isEnabled()
    saved = station.model_path
    assert saved and (Path(saved + ".feedback") / "good" / good_copy.name).is_file()  # marks carried over
    qtbot.waitUntil(lambda: len(_audit(tmp_path, "refit")) == 1, timeout=5000)
    refit = _audit(tmp_path, "refit")[0]
    assert refit["old_model_hash"] == real_model.model_hash and refit["new_model_hash"] == new.model_hash
    assert '"marked_good": 1' in refit["detail"]
    window.undo_action.trigger()
    assert station.model is real_model


def test_cancelled_refit_leaves_the_model(make_window, qtbot, real_model, demo_images, tmp_path):
    window = make_window()
    station = window.station
    station.set_model(real_model, "")
    cancelled = Recorder()
    station.fitter.fit_cancelled.connect(cancelled.record)
    window.refit_with_feedback(str(demo_images.reference_dir))
    window.feedback.progress.findChild(QPushButton).click()  # the dialog's Cancel button
    qtbot.waitUntil(lambda: bool(cancelled.calls), timeout=20000)
    assert station.model is real_model and window.feedback.progress is None


def test_batch_table_context_menu_marks_rows(make_window, qtbot, real_model, demo_images, tmp_path):
    window = make_window()
    station = window.station
    station.set_model(real_model, "")  # unsaved: the feedback folder is in the data dir
    window.batch.run(str(demo_images.inspect_dir))
    qtbot.waitUntil(lambda: not window.batch.running and window.batch.model.rowCount() > 0, timeout=30000)
    window.batch.table.selectRow(0)
    path, verdict = window.batch.selected_rows()[0]
    menu = window.batch.context_menu()
    kept = Recorder()
    window.feedback.kept.connect(kept.record)
    [action for action in menu.actions() if action.text().startswith("Mark defect")][0].trigger()
    menu.deleteLater()
    qtbot.waitUntil(lambda: bool(kept.calls), timeout=5000)
    folder = tmp_path / "data" / "feedback" / real_model.model_hash[:16] / "bad"
    assert [p.name for p in folder.iterdir()] == [path.split("/")[-1]]
    qtbot.waitUntil(lambda: len(_audit(tmp_path, "feedback")) == 1, timeout=5000)
    row = _audit(tmp_path, "feedback")[0]
    assert row["old_value"] == verdict and row["new_value"] == "bad" and path in row["detail"]


def test_regions_drawn_on_a_frame_refit_the_model_and_show_in_the_live_view(make_window, qtbot, real_model,
                                                                             demo_images, tmp_path):
    from inspector.core.imageio import read_image
    from inspector.segmentation.overlay import ignored_layer

    window = make_window()
    station = window.station
    station.set_model(real_model, "")
    image = read_image(sorted(demo_images.reference_dir.iterdir())[0])
    dialog = window.open_regions(image)
    canvas = dialog.canvas
    qtbot.waitExposed(dialog)
    target = canvas._target()

    def at(x: float, y: float) -> QPoint:  # image pixels -> canvas pixels
        return QPoint(round(target.x() + x * target.width() / 96), round(target.y() + y * target.height() / 96))

    assert dialog.ignore_button.isChecked()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=at(0, 0))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=at(48, 24))
    mask = dialog.mask()
    assert mask.shape == image.shape[:2]
    assert (mask[:22, :46] == 0).all() and (mask[27:, :] == 255).all() and (mask[:, 51:] == 255).all()
    assert dialog.summary.text() == f"{(mask == 0).mean():.0%} ignored"
    saved = dialog.save_mask(str(tmp_path / "mask.png"))
    assert (read_image(saved)[..., 0] == mask).all()

    changed = Recorder()
    station.model_changed.connect(changed.record)
    window.feedback.refit = lambda mask, reason: window.feedback.__class__.refit(  # the folder is known here
        window.feedback, str(demo_images.reference_dir), mask=mask, reason=reason)
    dialog.refit_button.click()
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=60000)
    new = station.model
    assert new.regions is not None and not new.regions.inspected[:4, :4].any()
    window.frame_view.show_frame(image)
    assert window.frame_view.ignored_shown
    assert f"{new.regions.ignored_fraction:.0%} ignored" in window.status.model_label.text()
    drawn = window.frame_view.ignore_item.image
    assert (drawn == ignored_layer(new.regions.inspected, image.shape)).all()  # the saved overlays' drawing
    window.undo_action.trigger()
    window.frame_view.show_frame(image)
    assert not window.frame_view.ignored_shown


def test_demo_model_built_before_folders_were_stored_refits_from_the_demo_references(real_model, tmp_path):
    from inspector.core.paths import demo_dir
    from inspector.gui.feedback_actions import known_reference_dir

    assert "reference_dir" not in real_model.info
    assert known_reference_dir(real_model, str(tmp_path / "elsewhere.safetensors")) is None
    demo_model = demo_dir() / "demo-model.safetensors"
    assert known_reference_dir(real_model, str(demo_model)) == str(demo_dir() / "reference")


def test_refit_dialog_keeps_the_regions_and_folder_of_the_model_in_use(make_window, qtbot, tmp_path):
    import numpy as np

    from inspector.core.imageio import read_image, write_image
    from inspector.pipeline.model import InspectionModel

    refs = tmp_path / "refs"
    cat = read_image("tests/data/chelsea.png")
    for i in range(10):  # ten real crops of the photograph as "good parts"
        write_image(refs / f"r{i}.png", cat[15 * i:15 * i + 96, 25 * i:25 * i + 96])
    mask = np.full((96, 96), 255, np.uint8)
    mask[:, :30] = 0
    images = [read_image(p) for p in sorted(refs.iterdir())]
    model = InspectionModel.fit(images, detector="gaussian", image_size=64, folds=3, device="cpu", mask=mask,
                                reference_dir=str(refs))
    window = make_window()
    window.station.set_model(model, "")
    dialog = window.open_refit()
    assert dialog.reference.path == str(refs) and dialog.keep_regions.isChecked()
    request = dialog.request()
    assert (request.mask > 0).sum() == model.regions.inspected.sum()
    dialog.keep_regions.setChecked(False)
    assert dialog.request().mask is None
    dialog.close()


def test_refit_with_feedback_in_the_window_keeps_the_models_detector_options(make_window, qtbot, demo_images,
                                                                             tmp_path):
    import numpy as np

    from inspector.core.imageio import list_images, read_image
    from inspector.pipeline.model import InspectionModel

    images = [read_image(p) for p in list_images([demo_images.reference_dir]).images]
    mask = np.full((96, 96), 255, np.uint8)
    mask[:20] = 0
    model = InspectionModel.fit(images, detector="fusion", image_size=72, folds=4, policy="frr", target=0.1,
                                device="cpu", mask=mask, reference_dir=str(demo_images.reference_dir),
                                components=("global", "bank"), bank_coreset=40, bank_dimensions=12, levels=(3, 4, 5))
    window = make_window()
    station = window.station
    station.set_model(model, str(tmp_path / "models" / "custom.safetensors"))
    marked = tmp_path / "models" / "custom.safetensors.feedback" / "good"
    marked.mkdir(parents=True)
    good = sorted(p for p in demo_images.inspect_dir.iterdir() if p not in demo_images.defective)[0]
    shutil.copy(good, marked / good.name)
    changed = Recorder()
    station.model_changed.connect(changed.record)
    request = window.refit_with_feedback()
    assert request.detector == "fusion" and request.image_size == 72 and request.folds == 4
    assert request.options == {"components": ["global", "bank"], "bank_coreset": 40, "bank_dimensions": 12,
                               "levels": [3, 4, 5]}
    assert (request.policy, request.target) == ("frr", 0.1)
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=120000)
    new = station.model
    config = new.detector.config()
    assert new is not model and new.info["n_reference"] == 12 + 1 and new.info["folds"] == 4
    assert config["components"] == ["global", "bank"] and config["levels"] == [3, 4, 5]
    assert (config["bank"]["coreset"], config["bank"]["dimensions"]) == (40, 12)
    assert new.detector.preprocessing.image_size == 72
    assert (new.calibration.policy, new.calibration.target) == ("frr", 0.1)
    np.testing.assert_array_equal(new.regions.inspected, model.regions.inspected)
    window.undo_action.trigger()
    assert station.model is model


def test_marks_after_a_recalibration_stay_in_the_model_files_feedback_folder(make_window, qtbot, real_model,
                                                                            demo_images, tmp_path):
    """Applying a policy makes an unsaved model with the same detector: its marks go where the earlier ones are."""
    from inspector.calibration.policies import calibrate

    window = make_window()
    station = window.station
    model_path = tmp_path / "models" / "line.safetensors"
    station.set_model(real_model, str(model_path))
    parts = tmp_path / "parts"
    parts.mkdir()
    shutil.copy(sorted(demo_images.inspect_dir.iterdir())[0], parts / "a.png")
    _run_folder(window, qtbot, parts)
    kept = Recorder()
    window.feedback.kept.connect(kept.record)
    window.mark_current("good")
    qtbot.waitUntil(lambda: len(kept.calls) == 1, timeout=5000)
    changed = Recorder()
    station.model_changed.connect(changed.record)
    station.apply_calibration(calibrate(real_model.calibration.good_scores, policy="frr", target=0.2))
    qtbot.waitUntil(lambda: bool(changed.calls), timeout=5000)
    assert station.model_path == "" and station.model.detector is real_model.detector
    window.mark_current("bad")
    qtbot.waitUntil(lambda: len(kept.calls) == 2, timeout=5000)
    folder = tmp_path / "models" / "line.safetensors.feedback"
    # The same folder as the first mark: the image marked good before is now marked defect there.
    assert kept.calls[-1][2] == {"good": 0, "bad": 1} and (folder / "bad" / "a.png").is_file()
    assert not (folder / "good" / "a.png").exists()
    request = window.feedback.feedback_request(str(demo_images.reference_dir))
    assert request.feedback_folder == str(folder)


def test_refit_dialog_preselects_and_keeps_the_model_in_use_settings(make_window, demo_images):
    from inspector.core.imageio import list_images, read_image
    from inspector.pipeline.model import InspectionModel

    images = [read_image(p) for p in list_images([demo_images.reference_dir]).images]
    model = InspectionModel.fit(images, detector="fusion", image_size=64, folds=3, device="cpu", target=0.1,
                                policy="frr", components=("global", "position"), levels=(3, 4, 5),
                                reference_dir=str(demo_images.reference_dir))
    window = make_window()
    window.station.set_model(model, "")
    dialog = window.open_refit()
    assert dialog.detector.currentText() == "fusion" and dialog.folds.value() == 3
    assert dialog.keep_settings.isChecked() and dialog.keep_settings.isEnabled()
    assert "input 64 px" in dialog.keep_settings.text()
    request = dialog.request()
    assert request.image_size == 64 and request.options == {"components": ["global", "position"],
                                                            "levels": [3, 4, 5]}
    assert (request.policy, request.target) == ("frr", 0.1)
    dialog.detector.setCurrentText("gaussian")  # another detector: the options do not apply
    assert not dialog.keep_settings.isEnabled()
    request = dialog.request()
    assert request.options == {} and request.image_size is None and request.policy is None
    dialog.close()


def test_keys_on_the_batch_tab_mark_the_selected_row_not_the_hidden_live_frame(make_window, qtbot, real_model,
                                                                               demo_images, tmp_path):
    window = make_window()
    window.station.set_model(real_model, "")
    parts = tmp_path / "parts"
    parts.mkdir()
    live = sorted(demo_images.inspect_dir.iterdir())[0]
    shutil.copy(live, parts / "live-frame.png")
    _run_folder(window, qtbot, parts)  # a live frame is shown behind the batch tab
    window.batch.run(str(demo_images.inspect_dir))
    qtbot.waitUntil(lambda: not window.batch.running and window.batch.model.rowCount() > 1, timeout=30000)
    window.tabs.setCurrentWidget(window.batch)
    window.batch.table.selectRow(1)
    path, _ = window.batch.selected_rows()[0]
    kept = Recorder()
    window.feedback.kept.connect(kept.record)
    qtbot.keyClick(window, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: bool(kept.calls), timeout=5000)
    folder = tmp_path / "data" / "feedback" / real_model.model_hash[:16] / "bad"
    assert [p.name for p in folder.iterdir()] == [path.split("/")[-1]]  # the row, not live-frame.png
