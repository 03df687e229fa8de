"""The fusion detector's fast map weighs the memory bank's map more than the per-position map.

On a texture from a generator this project did not write (``defect-synthesis`` grass), the
per-position map is noisy on good pixels (position means nothing there), so the plain mean of
the two maps outlines defects worse than a map led by the bank. Only the map changes: scores
take each evidence's peak. Model files from before the option keep the plain mean.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inspector.core.progress import silent
from inspector.detectors.fusion import MAP_BANK_WEIGHT, FusionDetector
from inspector.detectors.fusion_state import LEGACY_MAP_BANK_WEIGHT
from inspector.metrics.pixel import aupro

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_threaded")]


@pytest.fixture(scope="module")
def grass(tmp_path_factory):
    """A fitted default fusion detector on defect-synthesis grass, with test images and their masks."""
    pytest.importorskip("defect_synthesis")
    from inspector.core.imageio import read_image
    from inspector.datasets.defect_synthesis import export_defect_synthesis
    from inspector.datasets.mvtec import load_category, load_mask

    root = tmp_path_factory.mktemp("dsyn-grass-map")
    (folder,) = export_defect_synthesis(root, bases=["grass"], n_train=60, n_test_good=10, n_defect=30, size=224,
                                        seed=7)
    category = load_category(folder)
    images = [read_image(item.path) for item in category.test]
    masks = [load_mask(item, image.shape[:2]).astype(bool) if item.mask_path else np.zeros(image.shape[:2], bool)
             for item, image in zip(category.test, images)]
    detector = FusionDetector(image_size=224, device="cpu")
    detector.fit([read_image(p) for p in category.train_good], silent())
    return detector, images, masks


def _with_weight(detector: FusionDetector, config: dict) -> FusionDetector:
    return FusionDetector.from_state(config, detector.tensors(), torch.device("cpu"))


def test_bank_led_map_outlines_texture_defects_better_than_the_plain_mean(grass) -> None:
    detector, images, masks = grass
    assert detector.map_bank_weight == MAP_BANK_WEIGHT > 0.5
    config = json.loads(json.dumps(detector.config()))
    plain = _with_weight(detector, {**config, "map_bank_weight": 0.5})
    scores, maps = detector.score_and_maps(images)
    plain_scores, plain_maps = plain.score_and_maps(images)
    np.testing.assert_allclose(scores, plain_scores, rtol=1e-6)  # the score does not depend on the map weight
    led, mean = aupro(masks, list(maps)), aupro(masks, list(plain_maps))
    assert led > mean + 0.01, (led, mean)


def test_fast_map_is_the_weighted_mean_of_the_standardized_patch_maps(grass) -> None:
    detector, images, _ = grass
    _, maps = detector.score_and_maps(images[:3])
    _, spatial = detector.extract(images[:3])
    with torch.inference_mode():
        parts = detector._patch_maps(detector.patch_map.features(spatial), detector.position_mean,
                                     detector.position_std)
    expected = sum(w * detector._standardize(c, parts[c]) for c, w in
                   {"bank": MAP_BANK_WEIGHT, "position": 1 - MAP_BANK_WEIGHT}.items())
    np.testing.assert_allclose(maps, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_files_without_the_option_keep_the_plain_mean(grass) -> None:
    detector, images, _ = grass
    config = json.loads(json.dumps(detector.config()))
    assert config["map_bank_weight"] == MAP_BANK_WEIGHT
    old = _with_weight(detector, {k: v for k, v in config.items() if k != "map_bank_weight"})
    assert old.map_bank_weight == LEGACY_MAP_BANK_WEIGHT == 0.5
    _, old_maps = old.score_and_maps(images[:3])
    _, new_maps = detector.score_and_maps(images[:3])
    assert not np.allclose(old_maps, new_maps, atol=1e-3), "the option is read from the file"
    with pytest.raises(ValueError, match="map_bank_weight"):
        FusionDetector(image_size=224, device="cpu", map_bank_weight=1.5)
