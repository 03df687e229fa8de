"""The default detector on real images it was never tuned on: ELPV solar cells (mono)."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.imageio import read_image
from inspector.metrics.image import auroc
from inspector.pipeline.model import InspectionModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def elpv_model(elpv_mono, tmp_path_factory):
    rng = np.random.default_rng(0)
    good = list(rng.permutation(elpv_mono.good))
    refs = [read_image(p) for p in good[:80]]
    test_good = [read_image(p) for p in good[80:110]]
    test_bad = [read_image(p) for p in rng.permutation(elpv_mono.defective)[:30]]
    model = InspectionModel.fit(refs, folds=5)
    path = tmp_path_factory.mktemp("elpv") / "cells.safetensors"
    model.save(path)
    return model, path, test_good, test_bad


def test_defective_cells_score_above_good_cells(elpv_model):
    model, _, good, bad = elpv_model
    scores_good, scores_bad = model.score_images(good), model.score_images(bad)
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    assert auroc(labels, np.r_[scores_good, scores_bad]) > 0.8
    assert np.median(scores_bad) > np.median(scores_good)
    assert model.detector_kind == "fusion"


def test_every_evidence_helps_on_its_own(elpv_model):
    model, _, good, bad = elpv_model
    detector = model.detector
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    pooled, spatial = detector.extract(good + bad)
    with __import__("torch").inference_mode():
        import torch

        evidence = {}
        part = [torch.from_numpy(level) for level in pooled]
        features = detector.patch_map.features(spatial)
        evidence["global"] = detector._score_pooled(part).numpy()
        evidence["position"] = detector._position_map(features, detector.position_mean,
                                                      detector.position_std).amax((1, 2)).numpy()
        evidence["bank"] = detector._bank_map(features).amax((1, 2)).numpy()
    for name, values in evidence.items():
        assert auroc(labels, values) > 0.6, name


def test_saved_model_scores_the_same_and_extracted_path_matches(elpv_model):
    model, path, good, bad = elpv_model
    loaded = InspectionModel.load(path)
    images = good[:4] + bad[:4]
    direct = model.score_images(images)
    np.testing.assert_allclose(loaded.score_images(images), direct, rtol=1e-5)
    np.testing.assert_allclose(model.detector.score_extracted(*model.detector.extract(images)), direct, rtol=1e-5)
    scores, maps = model.detector.score_and_maps(images)
    np.testing.assert_allclose(scores, direct, rtol=1e-5)
    assert maps.shape == (len(images), 256, 256)  # the fusion default input, README
    heatmaps = model.heatmaps(bad[:4])
    assert max(h.values.max() for h in heatmaps) > 0
