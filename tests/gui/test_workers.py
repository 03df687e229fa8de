"""Worker behaviour on its own: the segmentation queue keeps the newest jobs; the model swaps between frames."""

from __future__ import annotations

import time

import numpy as np
from gui_stubs import Recorder, StubModel

from inspector.core.records import Frame, InspectionResult
from inspector.workers.segmentation_worker import SegmentationWorker, methods_for
from inspector.workers.thread_host import WorkerThread, running_worker_threads


class SlowMaps(StubModel):
    def heatmaps(self, images, method="fast", progress=None):
        time.sleep(0.05)
        return super().heatmaps(images, method, progress)


def _result(frame_id: int, anomalous: bool = True) -> InspectionResult:
    frame = Frame(np.zeros((8, 8, 3), np.uint8), "test", frame_id)
    return InspectionResult(frame, 0.9 if anomalous else 0.1, 1.0, 0.5, anomalous, "h")


def test_modes_choose_methods():
    assert methods_for("off", True) is None
    assert methods_for("fast", True) == "fast" and methods_for("fast", False) is None
    assert methods_for("gradient", True) == "gradient"
    assert methods_for("fast+gradient", False) == "fast" and methods_for("fast+gradient", True) == "gradient"


def test_segmentation_queue_is_bounded_and_keeps_newest(qtbot):
    worker = SegmentationWorker(capacity=3, mode="fast")
    host = WorkerThread("segmentation-test", worker)
    try:
        maps = Recorder()
        worker.heatmap_ready.connect(maps.record)
        worker.set_model(SlowMaps())
        qtbot.wait(50)
        for frame_id in range(20):
            worker.submit(_result(frame_id))
        assert worker.pending() <= 3
        assert not worker.submit(_result(99, anomalous=False)), "OK frames get no map in 'fast' mode"
        qtbot.waitUntil(lambda: worker.pending() == 0, timeout=5000)
        qtbot.wait(100)
        done = [frame_id for frame_id, _ in maps.calls]
        assert worker.dropped >= 20 - 3 - 1
        assert done[-3:] == [17, 18, 19], "the newest jobs survive"
        assert len(done) <= 4
    finally:
        host.shutdown()
    assert "segmentation-test" not in running_worker_threads()


def test_model_swap_lands_between_frames(make_window, qtbot, tmp_path):
    from gui_stubs import gray_folder

    folder = tmp_path / "parts"
    gray_folder(folder, [100] * 30)
    window = make_window()
    first = StubModel(threshold=0.9, delay=0.02, name="first")
    second = StubModel(threshold=0.1, delay=0.02, name="second")
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
    assert first.images_scored.value + second.images_scored.value == 30
