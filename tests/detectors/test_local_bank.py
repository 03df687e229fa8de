"""The per-cell patch bank (the fusion detector's ``local`` evidence): its search, its coreset, and
what it adds on real aligned parts (ELPV mono cells): a good patch in the wrong place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inspector.cli.info_cmd import model_info
from inspector.core.imageio import read_image
from inspector.detectors.fusion import FusionDetector
from inspector.detectors.local_bank import LocalBank, cell_coresets, nearest_in_window, window_gathers
from inspector.pipeline.model import InspectionModel

LOCAL = ["global", "position", "bank", "local"]


def _brute_force(queries, bank, sources, radius, exclude=()):
    count, height, width, _ = queries.shape
    out = np.full((count, height, width), np.inf)
    for n in range(count):
        for y in range(height):
            for x in range(width):
                for yy in range(max(0, y - radius), min(height, y + radius + 1)):
                    for xx in range(max(0, x - radius), min(width, x + radius + 1)):
                        for k in range(bank.shape[2]):
                            if int(sources[yy, xx, k]) in exclude:
                                continue
                            d = float(np.linalg.norm(queries[n, y, x] - bank[yy, xx, k]))
                            out[n, y, x] = min(out[n, y, x], d)
    return out


@pytest.mark.parametrize("radius", [0, 1, 2])
def test_the_window_search_finds_the_nearest_kept_patch_of_the_cells_around(radius):
    generator = torch.Generator().manual_seed(radius)
    features = torch.randn(12, 5, 4, 5, generator=generator)
    bank = LocalBank(radius=radius, keep=6, dimensions=4)
    bank.fit(features)
    queries = torch.randn(3, 5, 4, 5, generator=generator)
    projected = bank.project(queries)
    for exclude in (None, np.array([0, 3, 7])):
        got = bank.raw_distances(projected, exclude).numpy()
        expected = _brute_force(projected.numpy(), bank.bank.numpy(), bank.sources.numpy(), radius,
                                set() if exclude is None else set(exclude.tolist()))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_the_graphs_form_gives_the_same_distances_one_query_at_a_time_or_many():
    features = torch.randn(15, 6, 3, 4, generator=torch.Generator().manual_seed(5))
    bank = LocalBank(radius=1, keep=8, dimensions=5)
    bank.fit(features)
    projected = bank.project(features[:11])
    kept, norms = bank.searchable()
    gathers = window_gathers(kept.shape[0], kept.shape[1], 1)  # as the exported graph stores them
    together = nearest_in_window(projected, kept, norms, 1, gathers)
    np.testing.assert_allclose(together.numpy(), bank.raw_distances(projected).numpy(), rtol=1e-6)
    alone = torch.cat([nearest_in_window(projected[i:i + 1], kept, norms, 1) for i in range(11)])
    np.testing.assert_allclose(alone.numpy(), together.numpy(), rtol=1e-6)
    # The references' own patches are at distance 0, exactly (no cancellation).
    assert float(together.min()) == 0.0


def test_a_cell_with_every_patch_around_left_out_is_infinitely_far():
    features = torch.randn(4, 3, 3, 4, generator=torch.Generator().manual_seed(6))
    bank = LocalBank(radius=0, keep=4, dimensions=3)
    bank.fit(features)
    got = bank.raw_distances(bank.project(features[:1]), np.arange(4))
    assert torch.isinf(got).all()


def test_each_cells_coreset_keeps_distinct_points_farthest_first():
    points = torch.randn(7, 50, 3, generator=torch.Generator().manual_seed(1))
    chosen = cell_coresets(points, 10, seed=2)
    assert chosen.shape == (7, 10)
    for cell in range(7):
        assert len(set(chosen[cell].tolist())) == 10
        first = points[cell, chosen[cell, 0]]
        farthest = int((points[cell] - first).norm(dim=1).argmax())
        assert int(chosen[cell, 1]) == farthest
    everything = cell_coresets(points, 80)
    assert everything.shape == (7, 50) and all(sorted(row.tolist()) == list(range(50)) for row in everything)


def test_a_held_out_reference_is_standardized_by_statistics_that_never_saw_it():
    """During the fit, ``distances(..., exclude=held)`` (what calibration computes) uses each
    cell's mean and spread over the other references' held-out distances only, as a new part
    meets them; once the fit is over, the statistics of all references."""
    features = torch.randn(20, 6, 3, 4, generator=torch.Generator().manual_seed(3))
    bank = LocalBank(radius=1, keep=8, dimensions=5)
    bank.fit(features)
    references = bank._references.clone()  # (20, 3, 4): each reference scored without its own chunk
    held = np.array([4, 11])
    others = references[[i for i in range(20) if i not in held]]
    mean, std = others.mean(0), others.std(0, unbiased=False)
    raw = bank.raw_distances(bank.project(features[held]), held)
    expected = (raw - mean.float()) / torch.maximum(std, std.mean() * 0.1).float()
    np.testing.assert_allclose(bank.distances(features[held], held).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(bank.statistics_without(held)[1], bank.cell_std)
    with pytest.raises(RuntimeError, match="partition"):
        bank.held_out(held)  # not one of the fit's sets (consecutive tenths by default)
    bank.release_references()
    full = (raw - bank.cell_mean) / bank.cell_std
    np.testing.assert_allclose(bank.distances(features[held], held).numpy(), full.numpy(), rtol=1e-5, atol=1e-5)


def test_the_fits_own_search_gives_the_held_out_distances_of_its_partition():
    """Fitted with the calibration folds as its partition, the bank hands each fold's
    standardized held-out distances from its own search: the values a second search gives."""
    features = torch.randn(24, 6, 3, 4, generator=torch.Generator().manual_seed(8))
    folds = [np.array([0, 5, 9, 13, 20]), np.array([1, 2, 3, 4, 6, 7, 8]), np.arange(10, 13),
             np.array([14, 15, 16, 17, 18, 19, 21, 22, 23])]
    bank = LocalBank(radius=1, keep=10, dimensions=5)
    bank.fit(features, partition=folds)
    for held in folds:
        np.testing.assert_allclose(bank.held_out(held).numpy(), bank.distances(features[held], held).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_options_are_checked():
    with pytest.raises(ValueError, match="radius"):
        LocalBank(radius=-1)
    with pytest.raises(ValueError, match="at least one"):
        LocalBank(keep=0)
    with pytest.raises(ValueError, match="components"):
        FusionDetector(components=("global", "nearby"))


@pytest.mark.slow
def test_a_good_patch_in_the_wrong_place_is_what_the_local_evidence_sees_most(elpv_mono, tmp_path):
    """A mono cell's cut corner pasted into the middle of other good cells: every patch of it
    exists on good cells, but not there. The local evidence's standardized peak stays low on
    the cells intact and stands far above that on every moved one; the model file keeps it."""
    rng = np.random.default_rng(0)
    good = list(rng.permutation(elpv_mono.good))
    model = InspectionModel.fit([read_image(p) for p in good[:40]], folds=5, device="cpu", components=LOCAL)
    intact = [read_image(p) for p in good[40:50]]

    def moved(image):
        side = image.shape[0] // 5
        out = image.copy()
        out[2 * side:3 * side, 2 * side:3 * side] = image[:side, :side]
        return out

    detector = model.detector

    def peaks(images):
        with torch.inference_mode():
            features = detector.patch_map.features(detector.extract(images)[1])
            maps = detector._patch_maps(features, detector.position_mean, detector.position_std)
            return {c: detector._standardize(c, m.amax((1, 2))).numpy() for c, m in maps.items()}

    before, after = peaks(intact), peaks([moved(image) for image in intact])
    assert np.all(before["local"] < 3.0)
    assert after["local"].min() > before["local"].max() + 1.5
    # Fused with the other evidences (a mean), it lifts every moved cell above every intact one.
    assert model.score_images([moved(image) for image in intact]).min() > model.score_images(intact).max()

    path = tmp_path / "local.safetensors"
    model.save(path)
    loaded = InspectionModel.load(path)
    assert loaded.detector.components == tuple(LOCAL)
    assert model_info(loaded)["evidence"] == LOCAL  # what `inspector info` shows
    np.testing.assert_allclose(loaded.score_images(intact[:4]), model.score_images(intact[:4]), rtol=1e-6)
