"""A local Ray instance (2 CPUs, loopback) for the session, and ~30 real images with a model fitted on them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_address():
    """Start Ray once (it takes seconds); the tests' commands join it. Skipped without the scale extra."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = pytest.importorskip("ray", reason="Ray not installed (pip install 'inspector[scale]')")
    context = ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING")
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="session")
def scale_images(tmp_path_factory) -> Path:
    """30 generated texture images (good and defective, 128 px) and one unreadable file, in one folder."""
    from inspector.datasets.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("scale")
    generate_dataset(root / "ds", categories=["brick"], image_size=128, n_train=20, n_test_good=15,
                     n_test_defect_per_type=3, seed=3)
    folder = root / "images"
    folder.mkdir()
    for source in sorted((root / "ds" / "brick" / "test").rglob("*.png"))[:30]:
        shutil.copy(source, folder / f"{source.parent.name}_{source.name}")
    (folder / "m_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


@pytest.fixture(scope="session")
def scale_model(scale_images) -> Path:
    """A model fitted through ``inspector fit`` on the generated good training images."""
    from inspector.cli.main import main

    path = scale_images.parent / "brick.safetensors"
    assert main(["fit", str(scale_images.parent / "ds" / "brick" / "train" / "good"), "-o", str(path),
                 "--image-size", "128", "--quiet"]) == 0
    return path
