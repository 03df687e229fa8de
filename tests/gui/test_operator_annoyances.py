"""Small things an operator tripped over in a session at the station, on the real window and model."""

from __future__ import annotations

import shutil

from gui_stubs import Recorder


def _run(window, qtbot, folder) -> Recorder:
    states = Recorder()
    window.station.inspection.run_state_changed.connect(states.record)
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: ("finished",) in states.calls, timeout=20000)
    return states


def test_a_folder_this_model_already_decided_says_so_instead_of_an_empty_view(make_window, qtbot, real_model,
                                                                                demo_images, tmp_path):
    window = make_window()
    window.station.set_model(real_model, "")
    parts = tmp_path / "parts"
    parts.mkdir()
    for path in sorted(demo_images.inspect_dir.iterdir())[:3]:
        shutil.copy(path, parts / path.name)
    _run(window, qtbot, parts)
    qtbot.waitUntil(lambda: len(window.history.scores) == 3, timeout=5000)
    assert window.frame_view.banner_text == ""

    _run(window, qtbot, parts)  # the same folder again: every file is resumed (skipped)
    qtbot.waitUntil(lambda: "NOTHING NEW" in window.frame_view.banner_text, timeout=5000)
    assert window.frame_view.banner_text == "NOTHING NEW: 3 FILES ALREADY INSPECTED BY THIS MODEL"
    assert "all 3 files were already decided by this model" in window.status.currentMessage()
    assert len(window.history.scores) == 3


def test_the_regions_and_refit_with_feedback_actions_work_from_the_menu(make_window, qtbot, real_model, demo_images,
                                                                        tmp_path, monkeypatch):
    """QAction.triggered(checked=False) reached open_regions as its image: the menu entry failed, the test
    calling open_regions(image) did not see it."""
    from PySide6.QtWidgets import QFileDialog

    window = make_window()
    window.station.set_model(real_model, "")
    parts = tmp_path / "parts"
    parts.mkdir()
    shutil.copy(sorted(demo_images.inspect_dir.iterdir())[0], parts / "a.png")
    _run(window, qtbot, parts)
    qtbot.waitUntil(lambda: window._shown is not None, timeout=5000)
    window.regions_action.trigger()
    dialog = window._region_dialog
    assert dialog.isVisible() and dialog.canvas.image.shape == window._shown.frame.image.shape
    dialog.close()
    asked = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: asked.append(a) or "")
    window.refit_feedback_action.trigger()  # the fixture's model records no reference folder: it asks
    assert asked and window.feedback.progress is None


def test_regions_of_a_new_model_are_drawn_from_its_first_frame_not_over_the_frame_shown(make_window, qtbot,
                                                                                       real_model, demo_images,
                                                                                       tmp_path):
    """After a refit with regions the frame on screen (decided and mapped by the old model) got the new hatch."""
    import numpy as np

    from inspector.core.imageio import list_images, read_image
    from inspector.pipeline.model import InspectionModel

    images = [read_image(p) for p in list_images([demo_images.reference_dir]).images]
    mask = np.full((96, 96), 255, np.uint8)
    mask[:30] = 0
    masked = InspectionModel.fit(images, detector="gaussian", image_size=64, folds=3, device="cpu", mask=mask)
    window = make_window()
    window.station.set_model(real_model, "")
    parts = tmp_path / "parts"
    parts.mkdir()
    shutil.copy(sorted(demo_images.inspect_dir.iterdir())[0], parts / "a.png")
    _run(window, qtbot, parts)
    qtbot.waitUntil(lambda: window._shown is not None, timeout=5000)
    window.station.set_model(masked, "")
    assert not window.frame_view.ignored_shown  # the old model's frame and map: no hatch of the new regions
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(sorted(demo_images.inspect_dir.iterdir())[1], more / "b.png")
    _run(window, qtbot, more)
    qtbot.waitUntil(lambda: window._shown is not None and window._shown.model_hash == masked.model_hash,
                    timeout=5000)
    assert window.frame_view.ignored_shown


def test_an_empty_hot_folder_says_it_waits_for_the_first_frame(make_window, qtbot, real_model, demo_images,
                                                                tmp_path):
    window = make_window()
    window.station.set_model(real_model, "")
    hot = tmp_path / "hot"
    hot.mkdir()
    messages = Recorder()
    window.station.message.connect(messages.record)
    window.open_source(f"hotfolder:{hot}", start=True)
    qtbot.waitUntil(lambda: window.frame_view.banner_text == "WAITING FOR THE FIRST FRAME", timeout=5000)
    assert "already decided" not in window.status.currentMessage()
    shutil.copy(sorted(demo_images.inspect_dir.iterdir())[0], hot / ".part.tmp")
    (hot / ".part.tmp").rename(hot / "part.png")
    qtbot.waitUntil(lambda: window._shown is not None, timeout=15000)
    assert window.frame_view.banner_text == ""
    window.station.stop()


def test_threshold_box_says_no_model_before_one_is_loaded(make_window, real_model):
    window = make_window()
    panel = window.operator
    assert panel.spin.text() == "no model" and not panel.spin.isEnabled() and not panel.slider.isEnabled()
    window.station.set_model(real_model, "")
    assert panel.spin.isEnabled() and panel.spin.text() == "1.000 x cal."
