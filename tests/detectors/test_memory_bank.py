"""The memory bank's coreset keeps rare patches and the bank measures distances to its nearest patch."""

from __future__ import annotations

import numpy as np
import torch

from inspector.detectors.memory_bank import MemoryBank, greedy_coreset


def test_coreset_keeps_the_rare_points_a_random_sample_would_miss():
    generator = torch.Generator().manual_seed(0)
    common = torch.randn(5000, 8, generator=generator)
    rare = torch.randn(5, 8, generator=generator) + 40.0 * torch.eye(8)[:5]
    points = torch.cat([common, rare])
    chosen = set(greedy_coreset(points, 50).tolist())
    assert set(range(5000, 5005)) <= chosen
    assert len(chosen) == 50


def test_coreset_leaves_torch_thread_count_as_it_was():
    before = torch.get_num_threads()
    greedy_coreset(torch.randn(2000, 4), 20)
    assert torch.get_num_threads() == before


def test_bank_distance_is_zero_on_kept_patches_and_grows_away_from_them():
    patches = torch.randn(300, 16, generator=torch.Generator().manual_seed(1))
    bank = MemoryBank(dimensions=16, keep_all=1000)
    bank.fit(patches, torch.arange(300) // 10)
    grid = patches[:4].T.reshape(1, 16, 2, 2)
    assert bank.distances(grid).abs().max() < 1e-2  # float32 rounding of |a|^2 - 2ab + |b|^2
    assert (bank.distances(grid + 5.0) > 1.0).all()
    # Leaving out the images the patches came from makes them unseen again.
    assert (bank.distances(grid, exclude=np.array([0])) > 0.1).all()
