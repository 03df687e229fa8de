"""Fast patch map and gradient projection on real textures with drawn defects and known masks."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from inspector.core.imageio import read_image
from inspector.core.progress import Cancelled, Progress, silent
from inspector.datasets.mvtec import load_category, load_mask
from inspector.datasets.synthetic import generate_dataset
from inspector.detectors.gaussian import GaussianDetector
from inspector.metrics.pixel import pixel_auroc
from inspector.segmentation.gradient import gradient_map, gradient_scale
from inspector.detectors.patch_map import PatchMapModel
from inspector.segmentation.smoothing import smooth_maps

pytestmark = pytest.mark.usefixtures("single_threaded")

SIZE = 224
N_TRAIN = 30
GRADIENT_TYPES = ("hole", "contamination")


@dataclass(frozen=True)
class MaskedSet:
    train: list[np.ndarray]
    test: list[np.ndarray]
    masks: np.ndarray
    types: list[str]


@pytest.fixture(scope="module")
def masked_set(tmp_path_factory: pytest.TempPathFactory) -> MaskedSet:
    """30 good brick images, 4 good and 10 defective test images (2 per defect type) with masks."""
    root = generate_dataset(tmp_path_factory.mktemp("seg_maps"), categories=["brick"], image_size=SIZE,
                            n_train=N_TRAIN, n_test_good=4, n_test_defect_per_type=2, seed=0)
    category = load_category(root / "brick")
    train = [read_image(p) for p in category.train_good]
    test = [read_image(item.path) for item in category.test]
    masks = np.stack([load_mask(item, (SIZE, SIZE)) for item in category.test])
    return MaskedSet(train, test, masks, [item.defect_type for item in category.test])


@pytest.fixture(scope="module")
def fitted(masked_set):
    detector = GaussianDetector(fast_map=True, device="cpu")
    result = detector.fit(masked_set.train, silent(), folds=5)
    return detector, result


@pytest.fixture(scope="module")
def scale(fitted, masked_set) -> float:
    return gradient_scale(fitted[0], masked_set.train[:6])


def test_fast_map_localizes_drawn_defects(fitted, masked_set) -> None:
    detector, _ = fitted
    _, maps = detector.score_and_maps(masked_set.test)
    assert maps.shape == (len(masked_set.test), SIZE, SIZE) and maps.dtype == np.float32
    auroc = pixel_auroc(masked_set.masks, maps)
    assert auroc >= 0.9, auroc


def test_held_out_maps_come_from_a_model_that_did_not_see_them(fitted, masked_set) -> None:
    detector, result = fitted
    held = result.held_out_maps
    assert held is not None and held.dtype == np.float32
    assert held.shape[1:] == (SIZE, SIZE) and len(held) == N_TRAIN // 5
    assert np.isfinite(held).all()
    # The same images mapped by the final model (which was fitted on them) look more normal.
    from inspector.detectors.base import kfold_indices

    rows = kfold_indices(N_TRAIN, 5)[0]
    _, in_sample = detector.score_and_maps([masked_set.train[i] for i in rows])
    assert held.mean() > in_sample.mean()


def test_patch_map_state_round_trips(fitted, masked_set) -> None:
    detector, _ = fitted
    model = detector.patch_map
    config = json.loads(json.dumps(model.config()))
    again = PatchMapModel.from_state(config, {k: v.clone() for k, v in model.tensors().items()}, "cpu")
    assert again.levels == model.levels
    with torch.inference_mode():
        features = detector.net(detector.preprocessing.to_tensor(masked_set.test[:2]), upto=max(model.levels))
    spatial = [features[level] for level in model.levels]
    assert torch.equal(model.maps(spatial, SIZE), again.maps(spatial, SIZE))
    size_mb = sum(t.numel() * t.element_size() for t in model.tensors().values()) / 1e6
    assert size_mb < 5


def test_gradient_map_localizes_a_drawn_defect(fitted, masked_set, scale) -> None:
    detector, _ = fitted
    rows = [i for i, kind in enumerate(masked_set.types) if kind in GRADIENT_TYPES]
    good = [i for i, kind in enumerate(masked_set.types) if kind == "good"][:2]
    maps = gradient_map(detector, [masked_set.test[i] for i in rows + good], scale=scale)
    masks = masked_set.masks[rows + good]
    assert maps.shape == (len(rows) + 2, SIZE, SIZE) and maps.dtype == np.float32
    auroc = pixel_auroc(masks, maps)
    inside, outside = maps[masks].mean(), maps[~masks].mean()
    assert auroc > 0.75 and inside > 2 * outside, (auroc, inside, outside)
    # With the model's fixed scale the maps are comparable: defects peak higher than good frames.
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    assert peaks[: len(rows)].min() > peaks[len(rows):].max(), peaks


def test_gradient_scale_is_a_positive_model_constant(fitted, masked_set, scale) -> None:
    assert scale > 0
    again = gradient_scale(fitted[0], masked_set.train[6:12])
    assert 0.5 < again / scale < 2.0


def test_gradient_map_reports_progress_and_can_be_cancelled(fitted, masked_set) -> None:
    detector, _ = fitted
    seen: list[tuple[int, int]] = []
    progress = Progress(lambda done, total, message: seen.append((done, total)))
    gradient_map(detector, masked_set.test[:1], iterations=2, progress=progress, scale=1.0)
    assert seen[-1][0] == seen[-1][1] and [d for d, _ in seen] == sorted(d for d, _ in seen)

    calls = []

    def cancel_after_first(done: int, total: int, message: str) -> None:
        calls.append(done)
        if len(calls) == 2:
            cancelling.cancel()

    cancelling = Progress(cancel_after_first)
    with pytest.raises(Cancelled):
        gradient_map(detector, masked_set.test[:1], iterations=5, progress=cancelling, scale=1.0)
    assert len(calls) == 2


def test_gradient_map_works_inside_inference_mode(fitted, masked_set, scale) -> None:
    detector, _ = fitted
    with torch.inference_mode():
        maps = gradient_map(detector, masked_set.test[:1], iterations=1, scale=scale)
        weighted = gradient_map(detector, masked_set.test[:1], iterations=1, scale=scale,
                                weight_maps=np.ones((1, 56, 56), np.float32))
    assert np.isfinite(maps).all() and maps.max() > 0
    assert np.allclose(maps, weighted, atol=1e-6)


def test_smoothing_keeps_mass_and_shape() -> None:
    maps = torch.zeros(2, 64, 48)
    maps[0, 32, 24] = 1.0
    out = smooth_maps(maps, 4.0)
    assert out.shape == maps.shape
    assert float(out[0].sum()) == pytest.approx(1.0, abs=1e-4)
    assert out[0].argmax() == 32 * 48 + 24 and float(out[1].abs().max()) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_maps_run_on_cuda(fitted, masked_set) -> None:
    detector, _ = fitted
    cuda = PatchMapModel.from_state(detector.patch_map.config(), detector.patch_map.tensors(), "cuda")
    with torch.inference_mode():
        features = detector.net.to("cuda")(detector.preprocessing.to_tensor(masked_set.test[:1], "cuda"),
                                           upto=max(cuda.levels))
    out = cuda.maps([features[level] for level in cuda.levels], SIZE)
    detector.net.to("cpu")
    assert out.device.type == "cuda"


def test_cell_mahalanobis_is_the_distance_of_each_cell_from_its_own_mean() -> None:
    from inspector.detectors.patch_map import cell_mahalanobis

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 5, 4, 6, generator=generator, dtype=torch.float64)
    mean = torch.randn(5, 4, 6, generator=generator, dtype=torch.float64)
    root = torch.randn(5, 5, generator=generator, dtype=torch.float64)
    precision = root @ root.T + torch.eye(5, dtype=torch.float64)
    grid = cell_mahalanobis(features, mean, precision)
    assert grid.shape == (3, 4, 6)
    for n, y, x in [(0, 0, 0), (1, 3, 5), (2, 2, 1)]:
        d = features[n, :, y, x] - mean[:, y, x]
        assert float(grid[n, y, x]) == pytest.approx(float(torch.sqrt(d @ precision @ d)), rel=1e-12)
    # A cell exactly at its mean is at distance 0, whatever the other cells hold.
    features[1, :, 2, 3] = mean[:, 2, 3]
    assert float(cell_mahalanobis(features, mean, precision)[1, 2, 3]) == 0.0
