"""The fusion detector's defaults: four evidences, an input of at least 256 px (both chosen on the
suite), the backbone's own size above.

The Gaussian detector keeps the backbone's convention (224 px on Lite0); an explicit size
always wins, and a saved model keeps the size it was fitted at.
"""

from __future__ import annotations

import numpy as np
import pytest

from inspector.detectors.fusion import MIN_IMAGE_SIZE, FusionDetector
from inspector.detectors.gaussian import GaussianDetector
from inspector.pipeline.model import InspectionModel


@pytest.mark.parametrize("backbone, expected", [("lite0", 256), ("lite1", 256), ("lite2", 260)])
def test_fusion_defaults_to_at_least_256_px(backbone, expected):
    assert MIN_IMAGE_SIZE == 256
    assert FusionDetector(backbone=backbone, device="cpu").preprocessing.image_size == expected


def test_gaussian_and_explicit_sizes_are_unchanged():
    assert GaussianDetector(device="cpu").preprocessing.image_size == 224
    assert FusionDetector(image_size=224, device="cpu").preprocessing.image_size == 224


def test_a_saved_model_keeps_its_input_size(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(12)]
    path = tmp_path / "m.safetensors"
    InspectionModel.fit(images, image_size=128, folds=3, device="cpu").save(path)
    assert InspectionModel.load(path).detector.preprocessing.image_size == 128
    default = InspectionModel.fit(images, folds=3, device="cpu")
    assert default.detector.kind == "fusion" and default.detector.preprocessing.image_size == 256
    assert default.detector.components == ("global", "position", "bank", "local")
    assert default.detector.score_and_maps(images[:2])[1].shape == (2, 256, 256)
