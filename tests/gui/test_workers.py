"""Worker behaviour on its own: map plans, the follow-up queue keeps the newest jobs, the model swaps between frames."""

from __future__ import annotations

import time

import numpy as np
import pytest
from gui_stubs import Recorder, stub_model

import inspector.workers.segmentation_worker as segmentation_worker
from inspector.core.records import Frame
from inspector.workers.map_plan import MapPlan, plan_maps
from inspector.workers.segmentation_worker import SegmentationWorker
from inspector.workers.thread_host import WorkerThread, running_worker_threads


def _result(model, frame_id: int, level: int = 200):
    """A real record (with its fast map) of a uniform frame; level 200 is NG at threshold 0.5."""
    frame = Frame(np.full((8, 8, 3), level, np.uint8), "test", frame_id)
    return model.inspect([frame], maps="fast")[0]


def test_map_plans_follow_the_mode_and_the_model():
    both = ("fast", "gradient")
    assert plan_maps("off", both) == MapPlan()
    assert plan_maps("fast", both) == MapPlan("fast", "ng", None)
    assert plan_maps("gradient", both) == MapPlan("fast", "ng", "gradient"), "the fast map weights the gradient"
    assert plan_maps("fast+gradient", both) == MapPlan("fast", "all", "gradient")
    fallback = plan_maps("gradient", ("fast",))
    assert (fallback.inline, fallback.followup) == ("fast", None) and "no 'gradient' map" in fallback.note
    only_gradient = plan_maps("fast", ("gradient",))
    assert (only_gradient.inline, only_gradient.followup) == (None, "gradient") and only_gradient.note
    assert plan_maps("fast+gradient", ()).inline is None and plan_maps("fast+gradient", ()).note
    with pytest.raises(ValueError, match="unknown segmentation mode"):
        plan_maps("sometimes", both)


def test_follow_up_queue_is_bounded_and_keeps_newest(qtbot, monkeypatch):
    model = stub_model(threshold=0.5)
    original = segmentation_worker.make_overlay

    def slow_overlay(*args, **kwargs):
        time.sleep(0.05)
        return original(*args, **kwargs)

    monkeypatch.setattr(segmentation_worker, "make_overlay", slow_overlay)
    worker = SegmentationWorker(capacity=3, mode="fast")
    host = WorkerThread("segmentation-test", worker)
    try:
        overlays = Recorder()
        worker.overlay_ready.connect(overlays.record)
        worker.set_model(model)
        qtbot.wait(50)
        results = [_result(model, frame_id) for frame_id in range(20)]
        assert all(r.anomalous and r.heatmap is not None for r in results)
        passes = model.detector.passes.value
        for result in results:
            worker.submit(result)
        assert worker.pending() <= 3
        assert not worker.submit(_result(model, 99, level=20)), "OK frames need no follow-up in 'fast' mode"
        qtbot.waitUntil(lambda: worker.pending() == 0, timeout=5000)
        qtbot.wait(150)
        done = [result.frame.frame_id for result, _ in overlays.calls]
        assert worker.dropped >= 20 - 3 - 1
        assert done[-3:] == [17, 18, 19], "the newest jobs survive"
        assert len(done) <= 4
        shown, overlay = overlays.calls[-1]
        assert shown.heatmap is results[19].heatmap, "the overlay is drawn from the map the record carries"
        assert overlay.shape == (8, 8, 3)
        assert model.detector.passes.value == passes + 1, "overlays of inline maps run no detector pass"
    finally:
        host.shutdown()
    assert "segmentation-test" not in running_worker_threads()


def test_model_swap_lands_between_frames(make_window, qtbot, tmp_path):
    from gui_stubs import gray_folder

    folder = tmp_path / "parts"
    gray_folder(folder, [100] * 30)
    window = make_window()
    first = stub_model(threshold=0.9, delay=0.02, name="first")
    second = stub_model(threshold=0.1, delay=0.02, name="second")
    window.station.set_model(first, "")
    results = Recorder()
    window.station.inspection.result_ready.connect(results.record)
    window.open_source(f"folder:{folder}", start=True)
    qtbot.waitUntil(lambda: len(results.calls) >= 5, timeout=5000)
    window.station.set_model(second, "")
    qtbot.waitUntil(lambda: len(results.calls) == 30, timeout=10000)
    hashes = [r.model_hash for (r,) in results.calls]
    switch = hashes.index(second.model_hash)
    assert set(hashes[:switch]) == {first.model_hash} and set(hashes[switch:]) == {second.model_hash}
    assert all(r.anomalous for (r,) in results.calls[switch:])  # decided with the new model's threshold
    assert first.detector.images_scored.value + second.detector.images_scored.value == 30
