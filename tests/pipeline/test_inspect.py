"""The pipeline's record: score, verdict, threshold, hash and fast map of a frame from one backbone pass."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from inspector.core.policy import Threshold, ThresholdError
from inspector.core.records import Frame
from inspector.pipeline.model import InspectionModel

IMAGE_SIZE = 64
pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module", params=["gaussian", "fusion"])
def small_model(request, texture_set, single_threaded) -> InspectionModel:
    """A backbone model with a fast map, fitted small (64 px, 12 references, 3 folds)."""
    return InspectionModel.fit(texture_set.train[:12], detector=request.param, backbone="lite0",
                               image_size=IMAGE_SIZE, folds=3, device="cpu")


def _frames(images) -> list[Frame]:
    return [Frame(image, "test", index, path=f"/parts/{index}.png") for index, image in enumerate(images)]


class PassCounter:
    """Counts the backbone's forward passes and the images each one saw."""

    def __init__(self, net) -> None:
        self.batches: list[int] = []
        self._handle = net.register_forward_hook(lambda module, args, output: self.batches.append(len(args[0])))

    def close(self) -> None:
        self._handle.remove()


@pytest.fixture
def passes(small_model):
    counter = PassCounter(small_model.detector.net)
    yield counter
    counter.close()


def test_score_and_fast_map_come_from_one_backbone_pass(small_model, passes, texture_set):
    frames = _frames(texture_set.test_bad[:3])
    results = small_model.inspect(frames, maps="fast")
    assert passes.batches == [3], "one forward pass for the scores and the maps of the whole batch"
    expected = small_model.score_images([f.image for f in frames])
    for frame, result, raw in zip(frames, results, expected):
        assert result.frame is frame
        assert result.raw_score == pytest.approx(float(raw), rel=1e-6)
        assert result.heatmap is not None and result.heatmap.method == "fast"
        assert result.heatmap.values.shape == frame.image.shape[:2]
    reference = small_model.heatmaps([frames[0].image], method="fast")[0]
    np.testing.assert_allclose(results[0].heatmap.values, reference.values, rtol=1e-5, atol=1e-6)


def test_record_holds_decision_threshold_and_hash(small_model, texture_set):
    frames = _frames(texture_set.test_good[:2] + texture_set.test_bad[:2])
    results = small_model.inspect(frames)
    rule = small_model.decision
    for result in results:
        assert result.heatmap is None, "no map unless asked for"
        assert result.threshold == rule.raw == small_model.threshold
        assert result.anomalous == rule.decide(result.raw_score)
        assert result.verdict == ("NG" if result.anomalous else "OK")
        assert result.score == pytest.approx(result.raw_score / rule.raw)
        assert result.model_hash == small_model.model_hash
        assert result.latency_ms > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        results[0].anomalous = not results[0].anomalous  # type: ignore[misc]


def test_threshold_override_and_maps_only_on_ng(small_model, texture_set):
    frames = _frames(texture_set.test_good[:3] + texture_set.test_bad[:3])
    raw = small_model.score_images([f.image for f in frames])
    middle = Threshold(float(np.median(raw)))
    results = small_model.inspect(frames, maps="fast", threshold=middle, maps_on="ng")
    assert [r.anomalous for r in results] == list(raw > middle.raw)
    assert any(r.anomalous for r in results) and not all(r.anomalous for r in results)
    assert all((r.heatmap is not None) == r.anomalous for r in results)
    assert all(r.threshold == middle.raw for r in results)
    assert small_model.inspect(frames[:1], threshold=float(raw[0]) * 2)[0].anomalous is False
    with pytest.raises(ThresholdError):
        small_model.inspect(frames[:1], threshold=-1.0)
    with pytest.raises(ValueError, match="maps"):
        small_model.inspect(frames[:1], maps="gradient")
    assert small_model.inspect([], maps="fast") == []


def test_gradient_follow_up_reuses_the_fast_map(small_model, texture_set, monkeypatch):
    frame = _frames(texture_set.test_bad[:1])[0]
    result = small_model.inspect([frame], maps="fast")[0]
    calls = []
    original = small_model.detector.score_and_maps
    monkeypatch.setattr(small_model.detector, "score_and_maps",
                        lambda images: calls.append(len(images)) or original(images), raising=False)
    handed = small_model.heatmaps([frame.image], method="gradient", fast=[result.heatmap])[0]
    assert calls == [], "the fast map handed over is used; no second scoring pass"
    computed = small_model.heatmaps([frame.image], method="gradient")[0]
    assert calls == [1]
    assert handed.method == computed.method == "gradient"
    assert handed.values.shape == frame.image.shape[:2]
    # The handed map went to the frame's geometry and back: the same weights up to interpolation.
    assert np.corrcoef(handed.values.ravel(), computed.values.ravel())[0, 1] > 0.98


def test_model_without_fast_map_refuses_inline_maps(fitted_model, texture_set):
    assert "fast" not in fitted_model.supported_segmenters
    with pytest.raises(ValueError, match="no 'fast' map"):
        fitted_model.inspect(_frames(texture_set.test_good[:1]), maps="fast")


def test_the_facade_is_what_the_workers_are_typed_against(small_model):
    from inspector.pipeline.protocol import InspectingModel

    assert isinstance(small_model, InspectingModel)
    assert isinstance(small_model.with_calibration(small_model.calibration), InspectingModel)
    assert not isinstance(object(), InspectingModel)
