"""The Gaussian detector on real texture photographs: separation, k-fold calibration, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspector.core.progress import Cancelled, Progress, silent
from inspector.detectors.base import detector_class, kfold_indices
from inspector.detectors.gaussian import GaussianDetector
from inspector.pipeline.model import InspectionModel

pytestmark = pytest.mark.usefixtures("single_threaded")

SMALL_SIZE = 64
SMALL_LEVELS = (3, 8)  # stage3 (40 channels) and head (1280 channels)
SMALL_FOLDS = 3


def _auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    neg, pos = np.asarray(negatives)[:, None], np.asarray(positives)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


@pytest.fixture(scope="module")
def detector(fitted_model) -> GaussianDetector:
    assert isinstance(fitted_model.detector, GaussianDetector)
    return fitted_model.detector


@pytest.fixture(scope="module")
def small(detector, texture_set):
    """A detector on two levels at 64 px (sharing the backbone), fitted on 15 images with 3 folds."""
    images = texture_set.train[:15]
    small = GaussianDetector(levels=SMALL_LEVELS, image_size=SMALL_SIZE, fast_map=False, device="cpu",
                             _net=detector.net)
    result = small.fit(images, silent(), folds=SMALL_FOLDS)
    return small, images, result


# ---- separation ----------------------------------------------------------------------------

def test_defective_images_score_higher_than_good_ones(fitted_model, texture_set) -> None:
    good = fitted_model.score_images(texture_set.test_good)
    bad = fitted_model.score_images(texture_set.test_bad)
    assert good.shape == (len(texture_set.test_good),) and bad.shape == (len(texture_set.test_bad),)
    auroc = _auroc(good, bad)
    assert auroc >= 0.9, f"AUROC {auroc:.3f}; good {np.sort(good).round(1)}, bad {np.sort(bad).round(1)}"
    assert np.median(bad) > np.max(np.sort(good)[: len(good) // 2])


def test_scores_are_positive_finite_float64(fitted_model, texture_set) -> None:
    scores = fitted_model.score_images(texture_set.test_good[:3])
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all() and (scores > 0).all()


def test_uniform_image_is_far_more_anomalous_than_texture(fitted_model, texture_set) -> None:
    flat = np.full_like(texture_set.test_good[0], 128)
    [flat_score] = fitted_model.score_images([flat])
    assert flat_score > 2 * fitted_model.score_images(texture_set.test_good).max()


# ---- k-fold calibration ----------------------------------------------------------------------

def test_held_out_scores_exceed_in_sample_scores(fitted_model, texture_set) -> None:
    held_out = np.asarray(fitted_model.calibration.good_scores)
    in_sample = fitted_model.score_images(texture_set.train)
    assert held_out.shape == in_sample.shape == (len(texture_set.train),)
    assert held_out.mean() > 1.2 * in_sample.mean()
    assert np.mean(held_out > in_sample) >= 0.9
    # The threshold is set on the unbiased (held-out) scores, so it is above most in-sample scores.
    assert fitted_model.calibration.threshold >= held_out.max()
    assert fitted_model.calibration.expected_frr <= 0.01


def test_held_out_scores_equal_a_refit_without_the_fold(small) -> None:
    detector, images, result = small
    folds = kfold_indices(len(images), SMALL_FOLDS)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(images)))
    held = folds[0]
    train = [images[i] for i in range(len(images)) if i not in set(held.tolist())]
    refit = GaussianDetector(levels=SMALL_LEVELS, image_size=SMALL_SIZE, fast_map=False, device="cpu",
                             _net=detector.net)
    # The final Gaussians of a fit use all its images (its own folds only shape its held-out pass).
    refit.fit(train, silent(), folds=2)
    expected = refit.score([images[i] for i in held])
    np.testing.assert_allclose(result.held_out_scores[held], expected, rtol=1e-6)


def test_fit_result(small) -> None:
    _, images, result = small
    assert result.held_out_scores.shape == (len(images),)
    assert np.isfinite(result.held_out_scores).all() and (result.held_out_scores > 0).all()
    assert result.held_out_maps is None  # no fast map attached


def test_fit_reports_progress_and_can_be_cancelled(detector, texture_set) -> None:
    calls = []
    progress = Progress(lambda done, total, message: calls.append((done, total, message)))
    fresh = GaussianDetector(levels=(3,), image_size=32, fast_map=False, device="cpu", _net=detector.net)
    fresh.fit(texture_set.train[:10], progress, folds=2)
    assert calls and calls[-1][0] == calls[-1][1]
    assert any("extracting" in message for _, _, message in calls)

    cancelled = Progress()
    cancelled.cancel()
    other = GaussianDetector(levels=(3,), image_size=32, fast_map=False, device="cpu", _net=detector.net)
    with pytest.raises(Cancelled):
        other.fit(texture_set.train[:10], cancelled, folds=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        other.score(texture_set.train[:1])


# ---- input checks --------------------------------------------------------------------------

def test_fewer_than_ten_images(detector, texture_set) -> None:
    fresh = GaussianDetector(levels=(3,), fast_map=False, device="cpu", _net=detector.net)
    with pytest.raises(ValueError, match="at least 10"):
        fresh.fit(texture_set.train[:9], silent(), folds=3)
    with pytest.raises(ValueError, match="at least 10"):
        InspectionModel.fit(texture_set.train[:4], detector="gaussian", image_size=32, device="cpu", fast_map=False)
    with pytest.raises(ValueError, match="at least 10"):
        InspectionModel.fit(texture_set.train[:4], image_size=32, device="cpu")


def test_fewer_images_than_folds(detector, texture_set) -> None:
    fresh = GaussianDetector(levels=(3,), fast_map=False, device="cpu", _net=detector.net)
    with pytest.raises(ValueError, match="10 reference images are fewer than the 12 calibration folds"):
        fresh.fit(texture_set.train[:10], silent(), folds=12)
    with pytest.raises(ValueError, match="at least 2 folds"):
        fresh.fit(texture_set.train[:10], silent(), folds=1)


@pytest.mark.parametrize("levels", [(), (9,), (-1,), (0, 12)])
def test_invalid_levels(detector, levels) -> None:
    with pytest.raises(ValueError, match="levels"):
        GaussianDetector(levels=levels, fast_map=False, device="cpu", _net=detector.net)


# ---- determinism and batching --------------------------------------------------------------

def test_scoring_is_deterministic(fitted_model, texture_set) -> None:
    images = texture_set.test_good[:4] + texture_set.test_bad[:4]
    first = fitted_model.score_images(images)
    second = fitted_model.score_images(images)
    np.testing.assert_array_equal(first, second)


def test_scores_do_not_depend_on_the_batch(fitted_model, texture_set) -> None:
    images = texture_set.test_good[:4] + texture_set.test_bad[:4]
    batch_of_eight = fitted_model.score_images(images)
    one_by_one = np.concatenate([fitted_model.score_images([image]) for image in images])
    np.testing.assert_allclose(one_by_one, batch_of_eight, rtol=1e-6)
    # The same image in another batch, at another position.
    shuffled = fitted_model.score_images(images[::-1])
    np.testing.assert_allclose(shuffled[::-1], batch_of_eight, rtol=1e-6)


def test_batch_size_setting_does_not_change_scores(detector, texture_set) -> None:
    images = texture_set.test_bad[:5]
    reference = detector.score(images)
    saved = detector.batch_size
    try:
        detector.batch_size = 2
        np.testing.assert_allclose(detector.score(images), reference, rtol=1e-6)
    finally:
        detector.batch_size = saved


def test_frames_of_other_sizes_are_resized(fitted_model, texture_set) -> None:
    image = texture_set.test_good[0]
    bigger = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)  # 256x256, same content
    wide = np.ascontiguousarray(np.concatenate([image, image[:, :64]], axis=1))  # 128x192
    scores = fitted_model.score_images([image, bigger, wide])
    assert np.isfinite(scores).all()
    assert scores[1] == pytest.approx(scores[0], rel=0.15)


# ---- levels and state ----------------------------------------------------------------------

def test_levels_are_selectable(small) -> None:
    detector, _, _ = small
    tensors = detector.tensors()
    assert set(tensors) == {"gaussian.level3.mean", "gaussian.level3.precision",
                            "gaussian.level8.mean", "gaussian.level8.precision"}
    assert tuple(tensors["gaussian.level3.mean"].shape) == (40,)
    assert tuple(tensors["gaussian.level3.precision"].shape) == (40, 40)
    assert tuple(tensors["gaussian.level8.precision"].shape) == (1280, 1280)
    assert all(t.dtype == torch.float64 for t in tensors.values())
    config = detector.config()
    assert config["levels"] == [3, 8] and config["level_names"] == ["stage3", "head"]
    assert config["preprocessing"]["image_size"] == SMALL_SIZE


def test_levels_are_sorted_and_default_to_all(detector) -> None:
    unsorted = GaussianDetector(levels=[8, 3], fast_map=False, device="cpu", _net=detector.net)
    assert unsorted.levels == (3, 8)
    assert detector.levels == tuple(range(9))
    assert len(detector.tensors()) == 18


def test_precisions_are_symmetric_positive_definite(small) -> None:
    detector, _, _ = small
    for precision in detector.precisions:
        matrix = precision.cpu().numpy()
        np.testing.assert_allclose(matrix, matrix.T, rtol=0, atol=1e-12 * np.abs(matrix).max())
        assert np.linalg.eigvalsh(matrix).min() > 0


def test_identity(detector, fitted_model) -> None:
    assert detector_class("gaussian") is GaussianDetector
    assert detector.kind == fitted_model.detector_kind == "gaussian"
    assert detector.backbone_name == fitted_model.backbone == "lite0"
    assert detector.backbone_sha256 == detector.net.info.weights_sha256
    assert detector.preprocessing.image_size == 128
    assert not detector.has_maps and fitted_model.supported_segmenters == ("gradient",)


def test_differentiable_score_matches_score(small, texture_set) -> None:
    detector, _, _ = small
    images = texture_set.test_bad[:2]
    x = detector.preprocessing.to_tensor(images).requires_grad_(True)
    differentiable = detector.differentiable_score(x)
    np.testing.assert_allclose(differentiable.detach().numpy(), detector.score(images), rtol=1e-3)
    differentiable.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
