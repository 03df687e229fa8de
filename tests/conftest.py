"""Shared fixtures: a small real texture data set and a Gaussian model fitted on it once per session."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

TEXTURES_DIR = Path(__file__).resolve().parents[1] / "resources" / "textures"

TEXTURE_IMAGE_SIZE = 128
TEXTURE_N_TRAIN = 30
TEXTURE_N_TEST_GOOD = 12
# Clearly visible defect kinds: a sanity bar for the detectors, not a benchmark.
TEXTURE_DEFECT_TYPES = ("crack", "hole", "contamination")
TEXTURE_N_DEFECT_PER_TYPE = 4


@contextlib.contextmanager
def limited_threads(count: int = 1):
    """Run torch and BLAS on ``count`` threads.

    The test machines are small and shared: with more busy processes than cores,
    OpenMP/BLAS thread pools spin against each other and a forward pass gets
    10-20x slower. Results do not depend on the thread count.
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        with threadpool_limits(limits=count):
            yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def single_threaded():
    """Module-scoped :func:`limited_threads` (use with ``pytest.mark.usefixtures``)."""
    with limited_threads(1):
        yield


@dataclass(frozen=True)
class TextureSet:
    """Good and defective RGB uint8 images of one texture (train crops never reappear in test)."""

    category: str
    train: list[np.ndarray]
    test_good: list[np.ndarray]
    test_bad: list[np.ndarray]


def _generated_texture_set(root: Path, category: str) -> TextureSet:
    from inspector.core.imageio import list_images, read_image
    from inspector.datasets.synthetic import generate_dataset

    generate_dataset(root, categories=[category], image_size=TEXTURE_IMAGE_SIZE, n_train=TEXTURE_N_TRAIN,
                     n_test_good=TEXTURE_N_TEST_GOOD, n_test_defect_per_type=TEXTURE_N_DEFECT_PER_TYPE,
                     defect_types=list(TEXTURE_DEFECT_TYPES), seed=0)
    base = root / category

    def read(*parts: str) -> list[np.ndarray]:
        return [read_image(p) for p in list_images([base.joinpath(*parts)]).images]

    bad = [image for kind in TEXTURE_DEFECT_TYPES for image in read("test", kind)]
    return TextureSet(category, read("train", "good"), read("test", "good"), bad)


def _drawn_texture_set(category: str) -> TextureSet:
    """Fallback without the generator: random crops of the texture photo, with dark blobs and scratches."""
    import cv2

    from inspector.core.imageio import read_image

    texture = read_image(TEXTURES_DIR / f"{category}.png")
    rng = np.random.default_rng(0)
    size, h, w = TEXTURE_IMAGE_SIZE, texture.shape[0], texture.shape[1]
    split = int(0.6 * w)

    def crop(x0: int, x1: int) -> np.ndarray:
        x, y = rng.integers(x0, x1 - size), rng.integers(0, h - size)
        return np.ascontiguousarray(texture[y:y + size, x:x + size])

    train = [crop(0, split) for _ in range(TEXTURE_N_TRAIN)]
    good = [crop(split, w) for _ in range(TEXTURE_N_TEST_GOOD)]
    bad = []
    for index in range(len(TEXTURE_DEFECT_TYPES) * TEXTURE_N_DEFECT_PER_TYPE):
        image = crop(split, w).copy()
        centre = tuple(int(v) for v in rng.integers(30, size - 30, 2))
        if index % 2:
            cv2.circle(image, centre, int(rng.integers(10, 16)), (15, 12, 10), -1, cv2.LINE_AA)
        else:
            end = tuple(int(v) for v in rng.integers(10, size - 10, 2))
            cv2.line(image, centre, end, (245, 245, 240), 3, cv2.LINE_AA)
        bad.append(image)
    return TextureSet(category, train, good, bad)


@pytest.fixture(scope="session")
def texture_set(tmp_path_factory: pytest.TempPathFactory) -> TextureSet:
    """30 good training, 12 good test and 12 defective test images (128x128 brick texture)."""
    category = "brick"
    try:
        return _generated_texture_set(tmp_path_factory.mktemp("texture_set"), category)
    except Exception as exc:  # noqa: BLE001 - the generator is developed separately; never let it block these tests
        warnings.warn(f"synthetic generator failed ({exc!r}); using drawn defects instead", stacklevel=1)
        return _drawn_texture_set(category)


@pytest.fixture(scope="session")
def fitted_model(texture_set: TextureSet):
    """An :class:`InspectionModel` (Gaussian, lite0, 128 px, 5 folds) fitted on ``texture_set.train``."""
    from inspector.pipeline.model import InspectionModel

    with limited_threads(1):
        return InspectionModel.fit(texture_set.train, detector="gaussian", backbone="lite0",
                                   image_size=TEXTURE_IMAGE_SIZE, folds=5, device="cpu", fast_map=False)


@dataclass(frozen=True)
class RealCells:
    """Real electroluminescence images of solar cells (ELPV, mono type), in file-name order."""

    good: list[Path]
    defective: list[Path]


@pytest.fixture(scope="session")
def elpv_mono() -> RealCells:
    """The ELPV package's mono cells: good (probability 0) and defective (2/3 or 1). Skips if not installed."""
    pytest.importorskip("elpv_dataset")
    from inspector.datasets.elpv import load_cells

    cells = [c for c in load_cells() if c.cell_type == "mono"]
    return RealCells(good=sorted((c.path for c in cells if c.good), key=lambda p: p.name),
                     defective=sorted((c.path for c in cells if c.defective), key=lambda p: p.name))


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory):
    """One data folder for the whole run (the export cache is shared by the tests, never the user's)."""
    return tmp_path_factory.mktemp("inspector-data")


@pytest.fixture(autouse=True)
def isolated_data(session_data_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test writes data (export cache, demo, results) under a temporary folder unless it sets its own."""
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(session_data_dir))


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test reads settings from an empty folder, never the developer's own.

    Model loading obeys the settings' signature policy (``require_signed_models``),
    so a real settings file must not leak into the tests.
    """
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("INSPECTOR_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("INSPECTOR_REQUIRE_SIGNED_MODELS", raising=False)
