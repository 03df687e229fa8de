"""A large fit extracts its features on onnxruntime, checked against torch; the fitted model is the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import inspector.backbones.onnx_extraction as extraction
from inspector.core.imageio import read_image
from inspector.pipeline.model import InspectionModel

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def cells(elpv_mono):
    return [read_image(p) for p in elpv_mono.good[:40]], [read_image(p) for p in elpv_mono.defective[:12]]


def test_fit_on_onnxruntime_matches_the_fit_on_torch(cells, monkeypatch):
    good, defective = cells
    monkeypatch.setattr(extraction, "MIN_IMAGES", 30)  # 40 references: large enough here
    fast = InspectionModel.fit(good, device="cpu")
    monkeypatch.setenv(extraction.ENVIRONMENT, "torch")
    slow = InspectionModel.fit(good, device="cpu")
    assert fast.info["fit_extraction"] == "onnxruntime" and slow.info["fit_extraction"] == "torch"
    assert fast.threshold == pytest.approx(slow.threshold, rel=1e-4)
    probe = good[:4] + defective
    assert np.allclose(fast.score_images(probe), slow.score_images(probe), rtol=1e-4)
    scores = fast.score_images(good[:8] + defective)
    assert np.median(scores[8:]) > np.median(scores[:8])  # real defects still score above good cells


def test_small_fits_and_mismatches_stay_on_torch(cells):
    from inspector.detectors.fusion import FusionDetector

    detector = FusionDetector(device="cpu")
    batch = detector.preprocessing.to_tensor(cells[0][:4], detector.device)
    with torch.inference_mode():
        expected = detector._forward(batch)
    engine, why = extraction.onnx_forward(detector._forward, batch, expected, 12, detector.device)
    assert engine is None and "12 images" in why
    engine, why = extraction.onnx_forward(detector._forward, batch, expected, 1000, detector.device)
    assert engine is not None and why.startswith("onnxruntime")
    pooled, spatial = engine(batch)
    assert [t.shape for t in pooled + spatial] == [t.shape for t in expected[0] + expected[1]]
    wrong = ([p * 1.01 for p in expected[0]], expected[1])  # torch's outputs 1 % off: refused
    engine, why = extraction.onnx_forward(detector._forward, batch, wrong, 1000, detector.device)
    assert engine is None and "differs" in why
