"""The trained detectors (ae-l2, ae-ssim, vae, anogan): separation, maps, model files, cancel.

Each detector trains for a few steps at a tiny size on 30 brick images; that is
enough to tell dark blobs from good texture. Full-size figures are in the
benchmark, not here.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from inspector.core.progress import Cancelled, Progress, silent
from inspector.detectors.base import detector_class, detector_kinds
from inspector.detectors.ssim import dssim_map, ssim_map
from inspector.detectors.training import TrainingSettings, map_scores, split_validation, train
from inspector.metrics.pixel import pixel_auroc
from inspector.pipeline.model import InspectionModel

pytestmark = pytest.mark.usefixtures("single_threaded")

KINDS = ("ae-l2", "ae-ssim", "vae", "anogan")
FAST = dict(epochs=4, batch_size=8, min_steps_per_epoch=6, learning_rate=2e-3)
TINY = {
    "ae-l2": dict(image_size=32, **FAST),
    "ae-ssim": dict(image_size=32, **FAST),
    "vae": dict(image_size=32, patch_size=16, stride=8, **FAST),
    "anogan": dict(image_size=32, search_steps=10, val_search_steps=3, val_images=4, latent_bank=16, **FAST),
}


def _auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    neg, pos = np.asarray(negatives)[:, None], np.asarray(positives)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def _with_blob(image: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy with a dark disc (about 6 % of the area) and its mask."""
    rng = np.random.default_rng(seed)
    size = image.shape[0]
    radius = size // 7
    centre = tuple(int(v) for v in rng.integers(radius + 2, size - radius - 2, 2))
    out, mask = image.copy(), np.zeros(image.shape[:2], np.uint8)
    cv2.circle(out, centre, radius, (12, 10, 8), -1, cv2.LINE_AA)
    cv2.circle(mask, centre, radius, 1, -1)
    return out, mask.astype(bool)


@pytest.fixture(scope="module")
def blobs(texture_set):
    """The good test images with a dark blob drawn on each, and the blob masks."""
    pairs = [_with_blob(image, seed) for seed, image in enumerate(texture_set.test_good)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.fixture(scope="module")
def fitted(texture_set):
    """One :class:`InspectionModel` per kind, trained briefly, fitted on first use."""
    cache: dict[str, InspectionModel] = {}

    def get(kind: str) -> InspectionModel:
        if kind not in cache:
            torch.manual_seed(123)  # the detector must not depend on the global state; see test_deterministic
            cache[kind] = InspectionModel.fit(texture_set.train, detector=kind, device="cpu", **TINY[kind])
        return cache[kind]

    return get


def test_all_kinds_are_registered() -> None:
    assert set(KINDS) <= set(detector_kinds())


@pytest.mark.parametrize("kind", KINDS)
def test_dark_blobs_score_higher_than_good_images(kind, fitted, texture_set, blobs) -> None:
    model = fitted(kind)
    good = model.score_images(texture_set.test_good)
    bad = model.score_images(blobs[0])
    assert good.dtype == np.float64 and np.isfinite(good).all() and np.isfinite(bad).all()
    auroc = _auroc(good, bad)
    assert auroc >= 0.9, f"{kind}: AUROC {auroc:.3f}; good {np.sort(good).round(4)}, bad {np.sort(bad).round(4)}"


@pytest.mark.parametrize("kind", KINDS)
def test_maps_mark_the_blob_and_calibration_is_held_out(kind, fitted, texture_set, blobs) -> None:
    model = fitted(kind)
    detector = model.detector
    size = detector.preprocessing.image_size
    assert detector.has_maps and "fast" in model.supported_segmenters
    scores, maps = detector.score_and_maps(blobs[0][:6])
    assert maps.shape == (6, size, size) and np.array_equal(scores, detector.score(blobs[0][:6]))
    masks = [cv2.resize(m.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST).astype(bool)
             for m in blobs[1][:6]]
    blob_auroc = pixel_auroc(masks, list(maps))
    assert blob_auroc >= 0.85, f"{kind}: pixel AUROC of the blobs {blob_auroc:.3f}"
    # 30 images, 5 folds: 6 validation images, never trained on, give the calibration scores.
    assert len(model.calibration.good_scores) == 6
    assert "fast" in model.pixel_calibration


@pytest.mark.parametrize("kind", KINDS)
def test_model_file_round_trip_gives_identical_scores(kind, fitted, texture_set, blobs, tmp_path) -> None:
    model = fitted(kind)
    path = tmp_path / f"{kind}.inspector"
    model_hash = model.save(path)
    loaded = InspectionModel.load(path, device="cpu")
    assert loaded.detector_kind == kind and loaded.model_hash == model_hash
    assert loaded.detector.config() == model.detector.config()
    images = texture_set.test_good[:3] + blobs[0][:3]
    before, before_maps = model.detector.score_and_maps(images)
    after, after_maps = loaded.detector.score_and_maps(images)
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(after_maps, before_maps)
    assert loaded.threshold == model.threshold


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_stops_fitting(kind, texture_set) -> None:
    seen: list[str] = []
    progress = Progress(lambda done, total, message: (seen.append(message),
                                                      message.startswith("epoch 1") and progress.cancel()))
    detector = detector_class(kind)(device="cpu", **TINY[kind])
    with pytest.raises(Cancelled):
        detector.fit(texture_set.train, progress)
    assert any(m.startswith("epoch 1:") for m in seen) and not any(m.startswith("epoch 2") for m in seen)


def test_fitting_is_deterministic_and_leaves_global_rng_alone(fitted, texture_set) -> None:
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    again = detector_class("ae-l2")(device="cpu", **TINY["ae-l2"])
    again.fit(texture_set.train, silent())
    assert torch.equal(torch.rand(1), expected_next)
    first = fitted("ae-l2").detector
    for name, tensor in first.tensors().items():
        assert torch.equal(tensor, again.tensors()[name]), name


def test_time_budget_stops_training(texture_set) -> None:
    detector = detector_class("ae-l2")(device="cpu", image_size=32, epochs=1000, max_seconds=0.01)
    detector.fit(texture_set.train[:12], silent())
    assert detector.report.stop_reason == "time budget" and detector.report.epochs_run == 1


def test_invalid_options_fail_early() -> None:
    with pytest.raises(ValueError):
        detector_class("ae-l2")(image_size=40)
    with pytest.raises(ValueError):
        detector_class("vae")(image_size=128, patch_size=32, stride=20)
    with pytest.raises(ValueError):
        detector_class("anogan")(image_size=48)
    with pytest.raises(ValueError):
        detector_class("ae-ssim")(score="median")
    with pytest.raises(ValueError, match="at least 10"):
        detector_class("ae-l2")(image_size=32).fit([np.zeros((32, 32, 3), np.uint8)] * 5, silent())


# ---- shared helpers ---------------------------------------------------------------------------

def test_training_loop_stops_early_and_keeps_the_best_weights() -> None:
    layer = nn.Linear(1, 1)
    start = float(layer.weight.detach())
    losses = iter([3.0, 1.0, 2.0, 2.5, 0.5])

    def step(batch: torch.Tensor) -> float:
        with torch.no_grad():
            layer.weight.add_(1.0)
        return 0.0

    def validate() -> float:
        return next(losses)

    messages: list[str] = []
    report = train(step, validate, torch.zeros(4, 1), TrainingSettings(epochs=10, batch_size=4, patience=2,
                                                                       min_steps_per_epoch=1),
                   Progress(lambda d, t, m: messages.append(m)), torch.Generator().manual_seed(0), [layer],
                   augment=False)
    assert report.stop_reason == "early stop" and report.epochs_run == 4 and report.best_epoch == 2
    assert report.best_loss == 1.0 and float(layer.weight.detach()) == pytest.approx(start + 2.0)  # one step per epoch
    assert messages[1].startswith("epoch 1: loss 0.0000")


def test_validation_split_is_disjoint_and_sized_by_fraction() -> None:
    train_idx, val_idx = split_validation(30, 0.2, seed=0)
    assert len(val_idx) == 6 and len(train_idx) == 24
    assert set(train_idx).isdisjoint(val_idx) and set(train_idx) | set(val_idx) == set(range(30))
    assert np.array_equal(val_idx, split_validation(30, 0.2, seed=0)[1])


def test_ssim_is_one_for_equal_images_and_drops_with_structure_change() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=generator)
    assert torch.allclose(ssim_map(x, x), torch.ones_like(x), atol=1e-5)
    y = x.clone()
    y[:, :, 8:16, 8:16] = 0.5
    dssim = dssim_map(x, y)
    assert dssim.shape == (2, 24, 24)
    assert dssim[:, 10:14, 10:14].mean() > 0.5 and dssim[:, :2, :2].max() < 1e-4
    assert torch.allclose(ssim_map(x, y), ssim_map(y, x), atol=1e-6)


def test_map_scores() -> None:
    maps = torch.zeros(2, 10, 10)
    maps[1, :2, :2] = 1.0
    assert map_scores(maps, "top", 0.04).tolist() == [0.0, 1.0]
    assert map_scores(maps, "mean").tolist() == pytest.approx([0.0, 0.04])
    assert map_scores(maps, "max", 0.04).tolist() == [0.0, 1.0]
    assert math.isclose(float(map_scores(maps, "top", 0.08)[1]), 0.5)
