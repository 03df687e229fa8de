"""The memory bank's border shrink, on a texture from a generator this project did not write.

Good grass from ``defect-synthesis``: without the shrink (the first fusion bank) the largest
bank distance of a good image sits on the frame's outer ring of cells, where a patch can only
be matched by the references' few border patches; that hides the defects. With the shrink
(the default) the good images' peaks leave the border and the bank alone separates defective
from good images far better. Model files from before the option keep their bank.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inspector.core.progress import silent
from inspector.detectors.bank_geometry import border_weights, edge_classes
from inspector.detectors.fusion import FusionDetector
from inspector.detectors.fusion_state import LEGACY_BANK
from inspector.metrics.image import auroc

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]


@pytest.fixture(scope="module")
def dsyn_grass(tmp_path_factory):
    """(train, good test, defective test) images of defect-synthesis grass at 224 px."""
    pytest.importorskip("defect_synthesis")
    from inspector.core.imageio import read_image
    from inspector.datasets.defect_synthesis import export_defect_synthesis
    from inspector.datasets.mvtec import load_category

    root = tmp_path_factory.mktemp("dsyn-grass")
    (folder,) = export_defect_synthesis(root, bases=["grass"], n_train=60, n_test_good=16, n_defect=30, size=224)
    category = load_category(folder)
    good = [read_image(i.path) for i in category.test if i.label == 0]
    bad = [read_image(i.path) for i in category.test if i.label == 1]
    return [read_image(p) for p in category.train_good], good, bad


def _bank_only(train, **options) -> FusionDetector:
    detector = FusionDetector(image_size=224, components=("bank",), device="cpu", **options)
    detector.fit(train, silent())
    return detector


def _bank_grids(detector: FusionDetector, images) -> torch.Tensor:
    _, spatial = detector.extract(images)
    with torch.inference_mode():
        features = detector.patch_map.features(spatial)
        return detector._bank_grid(features)


def _share_of_peaks_on_the_ring(grids: torch.Tensor) -> float:
    height, width = grids.shape[-2:]
    flat = grids.flatten(1).argmax(1)
    rows, cols = flat // width, flat % width
    ring = (rows == 0) | (cols == 0) | (rows == height - 1) | (cols == width - 1)
    return float(ring.float().mean())


def test_border_weights_are_the_share_of_the_pooling_window_inside_the_frame() -> None:
    weights = border_weights(8, 8, channels=[2, 3], scales=[1, 2], pool=3)
    assert weights.shape == (1, 5, 8, 8)
    first = weights[0, 0]
    assert first[0, 0] == pytest.approx(4 / 9) and first[0, 3] == pytest.approx(6 / 9)
    assert first[3, 3] == pytest.approx(1.0)
    assert torch.all(weights[0, 2:, 3:5, 3:5] == 1.0)  # the coarser level's own interior, upsampled


def test_shrink_moves_good_peaks_off_the_border_and_separates_defects(dsyn_grass) -> None:
    train, good, bad = dsyn_grass
    shrunk, legacy = _bank_only(train, bank_edge=0), _bank_only(train, bank_border="none", bank_edge=0)
    assert (shrunk.bank_stride, shrunk.bank_border) == (16, "shrink")
    ring_legacy = _share_of_peaks_on_the_ring(_bank_grids(legacy, good))
    ring_shrunk = _share_of_peaks_on_the_ring(_bank_grids(shrunk, good))
    assert ring_legacy >= 0.5, ring_legacy
    assert ring_shrunk <= ring_legacy - 0.3, (ring_shrunk, ring_legacy)
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    auc_shrunk = auroc(labels, np.r_[shrunk.score(good), shrunk.score(bad)])
    auc_legacy = auroc(labels, np.r_[legacy.score(good), legacy.score(bad)])
    assert auc_shrunk > 0.8 and auc_shrunk > auc_legacy + 0.05, (auc_shrunk, auc_legacy)


def _ring_over_interior(grids: torch.Tensor) -> float:
    classes = edge_classes(*grids.shape[-2:], 2)
    mean = grids.mean(0)
    return float(mean[classes == 0].mean() / mean[classes == 2].mean())


def test_edge_rescaling_evens_out_good_distances_near_the_edge(dsyn_grass) -> None:
    train, good, bad = dsyn_grass
    plain, rescaled = _bank_only(train, bank_edge=0), _bank_only(train)
    assert plain.edge_factors is None and rescaled.edge_factors.shape == (3,)
    assert rescaled.edge_factors[0] < rescaled.edge_factors[1] < 1.0 == pytest.approx(float(rescaled.edge_factors[2]))
    before, after = _ring_over_interior(_bank_grids(plain, good)), _ring_over_interior(_bank_grids(rescaled, good))
    assert before > 1.05 and abs(after - 1.0) < 0.5 * (before - 1.0), (before, after)
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    auc_plain = auroc(labels, np.r_[plain.score(good), plain.score(bad)])
    auc_rescaled = auroc(labels, np.r_[rescaled.score(good), rescaled.score(bad)])
    assert auc_rescaled > auc_plain + 0.02, (auc_rescaled, auc_plain)
    path_config = json.loads(json.dumps(rescaled.config()))
    again = FusionDetector.from_state(path_config, rescaled.tensors(), torch.device("cpu"))
    np.testing.assert_allclose(again.score(good[:3]), rescaled.score(good[:3]), rtol=1e-6)


def test_files_without_bank_options_load_the_first_bank(dsyn_grass) -> None:
    train, good, bad = dsyn_grass
    first = FusionDetector(image_size=224, device="cpu", bank_border="none", bank_edge=0)  # the first bank
    first.fit(train[:30], silent())
    config = json.loads(json.dumps(first.config()))
    assert (config["bank"]["stride"], config["bank"]["border"], config["bank"]["edge"]) == (16, "none", 0)
    old = {**config, "bank": {k: v for k, v in config["bank"].items() if k not in ("stride", "border", "edge")}}
    loaded = FusionDetector.from_state(old, first.tensors(), torch.device("cpu"))
    assert (loaded.bank_stride, loaded.bank_border, loaded.bank_edge) == tuple(LEGACY_BANK.values())
    assert loaded.edge_factors is None
    images = good[:2] + bad[:2]
    np.testing.assert_allclose(loaded.score(images), first.score(images), rtol=1e-6)
    shrunk = FusionDetector.from_state({**config, "bank": {**config["bank"], "border": "shrink"}}, first.tensors(),
                                       torch.device("cpu"))
    assert not np.allclose(shrunk.score(images), first.score(images), rtol=1e-6), "the border option is read"
