"""Tests of the synthetic MVTec-AD-layout texture dataset generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.imageio import read_image, write_image
from inspector.datasets.defects import DEFECT_TYPES, MAX_AREA, MIN_AREA, add_defect
from inspector.datasets.synthetic import (
    CATEGORIES,
    available_categories,
    generate_dataset,
    load_texture,
    main,
    make_demo_images,
)

SIZE = 64


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    return generate_dataset(
        root, image_size=SIZE, n_train=4, n_test_good=2, n_test_defect_per_type=2, seed=3
    )


def test_shipped_categories_are_available() -> None:
    assert set(CATEGORIES) <= set(available_categories())


def test_layout(dataset: Path) -> None:
    assert sorted(p.name for p in dataset.iterdir()) == sorted(available_categories())
    for category in CATEGORIES:
        base = dataset / category
        assert len(list((base / "train" / "good").glob("*.png"))) == 4
        assert len(list((base / "test" / "good").glob("*.png"))) == 2
        assert sorted(p.name for p in (base / "test").iterdir()) == sorted([*DEFECT_TYPES, "good"])
        assert sorted(p.name for p in (base / "ground_truth").iterdir()) == sorted(DEFECT_TYPES)
        for defect in DEFECT_TYPES:
            images = sorted((base / "test" / defect).glob("*.png"))
            masks = sorted((base / "ground_truth" / defect).glob("*.png"))
            assert [p.stem + "_mask.png" for p in images] == [m.name for m in masks]
            assert len(images) == 2
        image = read_image(base / "train" / "good" / "000.png")
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8


def test_masks_binary_nonempty_within_area_bounds(dataset: Path) -> None:
    for mask_path in dataset.glob("*/ground_truth/*/*_mask.png"):
        mask = read_image(mask_path)[:, :, 0]
        assert set(np.unique(mask)) <= {0, 255}
        assert MIN_AREA <= (mask > 0).mean() <= MAX_AREA, mask_path


@pytest.mark.parametrize("category", CATEGORIES)
def test_defects_are_visible_and_confined_to_the_mask(category: str) -> None:
    texture = load_texture(category)[:256, :256]
    for defect in DEFECT_TYPES:
        rng = np.random.default_rng(11)
        out, mask = add_defect(texture, defect, rng)
        change = np.abs(out.astype(np.float32) - texture).max(axis=2)
        assert change[mask].mean() > 10.0, defect
        assert change[~mask].mean() < 1.5, defect


def test_deterministic_and_independent_of_other_categories(dataset: Path, tmp_path: Path) -> None:
    again = generate_dataset(
        tmp_path / "a",
        categories=["gravel"],
        image_size=SIZE,
        n_train=4,
        n_test_good=2,
        n_test_defect_per_type=2,
        seed=3,
    )
    assert _files(again / "gravel") == _files(dataset / "gravel")
    other = generate_dataset(
        tmp_path / "b",
        categories=["gravel"],
        image_size=SIZE,
        n_train=4,
        n_test_good=2,
        n_test_defect_per_type=2,
        seed=4,
    )
    assert _files(other / "gravel").keys() == _files(dataset / "gravel").keys()
    assert _files(other / "gravel") != _files(dataset / "gravel")


def test_train_and_test_images_differ(dataset: Path) -> None:
    for category in CATEGORIES:
        train = [
            read_image(p).astype(np.float32)
            for p in (dataset / category / "train" / "good").glob("*.png")
        ]
        for path in (dataset / category / "test" / "good").glob("*.png"):
            test = read_image(path).astype(np.float32)
            assert min(np.abs(test - t).mean() for t in train) > 5.0


def test_unknown_category_and_defect_type_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="wood"):
        generate_dataset(tmp_path, categories=["wood"], image_size=SIZE)
    with pytest.raises(ValueError, match="smudge"):
        generate_dataset(tmp_path, defect_types=["smudge"], image_size=SIZE)
    with pytest.raises(ValueError, match="smudge"):
        add_defect(np.zeros((SIZE, SIZE, 3), np.uint8), "smudge", np.random.default_rng(0))


@pytest.mark.parametrize("size", [48, 256])
def test_add_defect_area_bounds_at_other_sizes(size: int) -> None:
    rng = np.random.default_rng(7)
    image = rng.integers(60, 200, (size, size, 3)).astype(np.uint8)
    for defect in DEFECT_TYPES:
        out, mask = add_defect(image, defect, rng)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert MIN_AREA <= mask.mean() <= MAX_AREA


def test_make_demo_images(tmp_path: Path) -> None:
    demo = make_demo_images(
        tmp_path, category="grass", n_reference=5, n_good=6, n_defect=3, image_size=SIZE
    )
    assert len(list(demo.reference_dir.glob("*.png"))) == 5
    assert len(list(demo.inspect_dir.glob("*.png"))) == 9
    assert len(demo.defective) == 3
    for path in demo.defective:
        assert path.parent == demo.inspect_dir
        assert (demo.masks_dir / f"{path.stem}_mask.png").is_file()


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            str(tmp_path),
            "--size",
            str(SIZE),
            "--train",
            "2",
            "--test-good",
            "1",
            "--test-defect",
            "1",
            "--categories",
            "brick",
            "--defects",
            "hole",
            "crack",
        ]
    )
    assert code == 0
    assert len(list((tmp_path / "brick" / "test").rglob("*.png"))) == 3
    assert main([str(tmp_path), "--categories", "wood"]) == 2
    assert "wood" in capsys.readouterr().err
