"""A small generated MVTec-layout category and a model fitted on it through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.cli.main import main
from inspector.datasets.synthetic import generate_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """One texture category with good and defective test images and masks (128 px)."""
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, categories=["brick"], image_size=128, n_train=30, n_test_good=8,
                     n_test_defect_per_type=3, seed=1)
    return root / "brick"


@pytest.fixture(scope="session")
def model_path(dataset, tmp_path_factory) -> Path:
    """A Gaussian model fitted with ``inspector fit`` on the category's good training images."""
    path = tmp_path_factory.mktemp("model") / "brick.safetensors"
    code = main(["fit", str(dataset / "train" / "good"), "-o", str(path), "--image-size", "128", "--quiet"])
    assert code == 0
    return path
