"""The literature detectors' maps: the autoencoders' two scales in units of rarity, AnoGAN's feature map.

Fast tests (no long training): the rarity transform against a known distribution, the maps
the options give, and that model files from before each option keep their maps. How the maps
do on real defects is in ``test_trained_real.py`` (slow).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inspector.core.progress import silent
from inspector.detectors.base import detector_class
from inspector.detectors.rarity import TAIL_LEVELS, tail_scores, tail_table
from inspector.detectors.training import smooth_maps

pytestmark = pytest.mark.usefixtures("single_threaded")


def test_tail_scores_are_the_rarity_of_a_value_among_good_values() -> None:
    good = torch.distributions.Exponential(1.0).sample((200_000,))
    table = tail_table(good)
    values = torch.tensor([0.05, 0.7, 2.0, 4.5, 6.0])
    # P(X > v) = exp(-v): the rarity -log10 of it is v / ln 10, up to the quantiles' sampling noise.
    np.testing.assert_allclose(tail_scores(values, table).numpy(), values.numpy() / math.log(10), atol=0.06)
    far = tail_scores(torch.tensor([10.0, 20.0, 40.0]), table)
    assert bool((far[1:] > far[:-1]).all()) and float(far[0]) > 3.0  # beyond the table it keeps growing
    assert float(tail_scores(good.min()[None] / 2, table)) == 0.0  # below every good value
    v = values.clone().requires_grad_(True)
    tail_scores(v, table).sum().backward()
    assert bool((v.grad > 0).all())


def test_tail_table_levels_end_below_one() -> None:
    assert TAIL_LEVELS[0] == 0.0 and TAIL_LEVELS[-1] < 1.0
    assert all(b > a for a, b in zip(TAIL_LEVELS, TAIL_LEVELS[1:]))


def _fitted(kind: str, texture_set, **options):
    detector = detector_class(kind)(device="cpu", epochs=1, min_steps_per_epoch=2, max_seconds=None, **options)
    detector.fit(texture_set.train[:12], silent())
    return detector


def test_autoencoder_files_from_before_scale_units_keep_percentile_scales(texture_set) -> None:
    detector = _fitted("ae-l2", texture_set, image_size=64, scale_units="percentile")
    config, tensors = detector.config(), detector.tensors()
    old = {**config, "options": {k: v for k, v in config["options"].items() if k != "scale_units"}}
    loaded = type(detector).from_state(old, tensors, torch.device("cpu"))
    assert loaded.scale_units == "percentile"
    images = texture_set.test_good[:2] + texture_set.test_bad[:2]
    np.testing.assert_array_equal(loaded.score_and_maps(images)[1], detector.score_and_maps(images)[1])
    # The default now: the maximum of the two scales' rarities, which survives a save and load.
    new = _fitted("ae-l2", texture_set, image_size=64)
    again = type(new).from_state(new.config(), new.tensors(), torch.device("cpu"))
    maps = new.score_and_maps(images)[1]
    np.testing.assert_array_equal(again.score_and_maps(images)[1], maps)
    with torch.no_grad():
        fine, coarse = new._scale_maps(new._tensor(images))
    expected = torch.maximum(tail_scores(fine, new.map_tails[0]), tail_scores(coarse, new.map_tails[1]))
    np.testing.assert_allclose(maps, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_anogan_map_compares_discriminator_features_and_old_files_keep_the_pixel_residual(texture_set) -> None:
    options = dict(search_steps=2, val_search_steps=1, val_images=2, latent_bank=4)
    detector = _fitted("anogan", texture_set, **options)
    assert detector.map_features == 2
    config, tensors = detector.config(), detector.tensors()
    images = texture_set.test_good[:2] + texture_set.test_bad[:2]
    again = type(detector).from_state(config, tensors, torch.device("cpu"))
    np.testing.assert_allclose(again.score_and_maps(images)[1], detector.score_and_maps(images)[1], rtol=1e-5,
                               atol=1e-6)
    old = {**config, "options": {k: v for k, v in config["options"].items() if k != "map_features"}}
    pixel = type(detector).from_state(old, tensors, torch.device("cpu"))
    assert pixel.map_features == 0
    x = pixel._tensor(images)
    _, _, generated = pixel.search(x)
    expected = smooth_maps((x - generated).abs().mean(dim=1), pixel.map_sigma)
    np.testing.assert_allclose(pixel.score_and_maps(images)[1], expected.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        detector_class("anogan")(device="cpu", map_features=5)  # 64 px has four stages


def test_ssim_autoencoder_coarse_scale_is_the_blurred_squared_difference_and_old_files_keep_ssim(texture_set) -> None:
    from inspector.detectors.training import blur_images as _blur
    from inspector.detectors.ssim import dssim_map

    detector = _fitted("ae-ssim", texture_set, image_size=64)
    assert detector.coarse_residual == "l2"
    images = texture_set.test_good[:2] + texture_set.test_bad[:2]
    x = detector._tensor(images)
    with torch.no_grad():
        reconstruction = detector.reconstruct(x)
        sharp, blurred = _blur(x, detector.coarse_sigma), _blur(reconstruction, detector.coarse_sigma)
        fine, coarse = detector._scale_maps(x)
        expected_fine = smooth_maps(dssim_map(x, reconstruction, 11), detector.map_sigma)
        expected = smooth_maps((sharp - blurred).pow(2).sum(dim=1), detector.map_sigma)
    np.testing.assert_allclose(fine.numpy(), expected_fine.numpy(), rtol=1e-5, atol=1e-6)  # the fine scale stays SSIM
    np.testing.assert_allclose(coarse.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)
    again = type(detector).from_state(detector.config(), detector.tensors(), torch.device("cpu"))
    np.testing.assert_array_equal(again.score_and_maps(images)[1], detector.score_and_maps(images)[1])
    # Files from before the option compared the blurred pair by 1 - SSIM, and keep doing so.
    old = _fitted("ae-ssim", texture_set, image_size=64, coarse_residual="ssim")
    config = old.config()
    config = {**config, "options": {k: v for k, v in config["options"].items() if k != "coarse_residual"}}
    loaded = type(old).from_state(config, old.tensors(), torch.device("cpu"))
    assert loaded.coarse_residual == "ssim"
    with torch.no_grad():
        reconstruction = loaded.reconstruct(x)
        expected = smooth_maps(dssim_map(_blur(x, 4.0), _blur(reconstruction, 4.0), 11), loaded.map_sigma)
        np.testing.assert_allclose(loaded._scale_maps(x)[1].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(loaded.score_and_maps(images)[1], old.score_and_maps(images)[1])
    assert detector_class("ae-l2")(device="cpu").coarse_residual == "l2"
    with pytest.raises(ValueError):
        detector_class("ae-ssim")(device="cpu", coarse_residual="l1")


def test_vae_coarse_scale_is_the_rarity_maximum_and_files_without_it_keep_m_vae(texture_set) -> None:
    detector = _fitted("vae", texture_set, image_size=64)
    assert detector.coarse_sigma == 2.0  # the default draws both scales
    images = texture_set.test_good[:2] + texture_set.test_bad[:2]
    maps = detector.score_and_maps(images)[1]
    with torch.no_grad():
        fine, coarse = detector._scale_maps(detector._tensor(images))
    expected = torch.maximum(tail_scores(fine, detector.map_tails[0]), tail_scores(coarse, detector.map_tails[1]))
    np.testing.assert_allclose(maps, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(maps, fine.numpy())  # the two-scale map is not the M_VAE map
    config, tensors = detector.config(), detector.tensors()
    again = type(detector).from_state(config, tensors, torch.device("cpu"))
    np.testing.assert_array_equal(again.score_and_maps(images)[1], maps)
    old = {**config, "options": {k: v for k, v in config["options"].items() if k != "coarse_sigma"}}
    before = type(detector).from_state(old, {k: v for k, v in tensors.items() if k != "map_tails"}, torch.device("cpu"))
    assert before.coarse_sigma == 0.0
    np.testing.assert_allclose(before.score_and_maps(images)[1], fine.numpy(), rtol=1e-5, atol=1e-6)
