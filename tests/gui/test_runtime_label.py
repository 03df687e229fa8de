"""The status bar says which engine decides: a ``.safetensors`` file loaded by the station runs on
onnxruntime by default (``--runtime auto``), a model handed over in memory stays on torch."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'inspector[onnx]')")


def test_loaded_model_says_onnxruntime_and_in_memory_model_says_torch(make_window, qtbot, real_model,
                                                                      real_model_path):
    window = make_window()
    window.station.load_model(str(real_model_path))
    qtbot.waitUntil(lambda: window.station.model is not None, timeout=120000)
    label = window.status.model_label.text()
    assert label.endswith("· onnxruntime") and real_model.model_hash[:10] in label, label
    assert window.station.model.runtime == "onnxruntime"
    window.station.set_model(real_model, str(real_model_path))
    qtbot.waitUntil(lambda: window.status.model_label.text().endswith("· torch"), timeout=10000)
