"""Tests of the MVTec-AD layout reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inspector.core.imageio import write_image
from inspector.datasets.mvtec import TestItem, find_categories, load_category, load_mask
from inspector.datasets.synthetic import generate_dataset


def _image(path: Path, value: int = 128, size: int = 16) -> Path:
    write_image(path, np.full((size, size, 3), value, np.uint8))
    return path


def _make_category(root: Path) -> Path:
    for name in ("2.png", "10.png", "1.png"):
        _image(root / "train" / "good" / name)
    (root / "train" / "good" / "notes.txt").write_text("not an image")
    _image(root / "test" / "good" / "000.png")
    _image(root / "test" / "crack" / "000.png")
    _image(root / "test" / "crack" / "001.png")
    _image(root / "test" / "crack" / "002.png")
    _image(root / "test" / "blob" / "000.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 2:6] = 255
    write_image(root / "ground_truth" / "crack" / "000_mask.png", mask)
    write_image(root / "ground_truth" / "crack" / "002.png", mask)  # mask named like its image
    write_image(root / "ground_truth" / "blob" / "000_mask.png", mask)
    return root


def test_load_category(tmp_path: Path) -> None:
    root = _make_category(tmp_path / "widget")
    category = load_category(root)
    assert category.name == "widget"
    assert [p.name for p in category.train_good] == ["1.png", "2.png", "10.png"]
    assert [(t.defect_type, t.path.name, t.label) for t in category.test] == [
        ("good", "000.png", 0),
        ("blob", "000.png", 1),
        ("crack", "000.png", 1),
        ("crack", "001.png", 1),
        ("crack", "002.png", 1),
    ]
    masks = {(t.defect_type, t.path.name): t.mask_path for t in category.test}
    assert masks[("good", "000.png")] is None
    assert masks[("crack", "000.png")] == root / "ground_truth" / "crack" / "000_mask.png"
    assert masks[("crack", "001.png")] is None
    assert masks[("crack", "002.png")] == root / "ground_truth" / "crack" / "002.png"
    assert category.defect_types == ["blob", "crack"]


def test_load_mask(tmp_path: Path) -> None:
    category = load_category(_make_category(tmp_path / "widget"))
    by_key = {(t.defect_type, t.path.name): t for t in category.test}
    mask = load_mask(by_key[("crack", "000.png")], (16, 16, 3))
    assert mask.dtype == bool and mask.shape == (16, 16)
    assert mask.sum() == 16 and mask[4:8, 2:6].all()
    assert not load_mask(by_key[("good", "000.png")], (16, 16)).any()
    assert not load_mask(by_key[("crack", "001.png")], (16, 16)).any()
    resized = load_mask(by_key[("crack", "000.png")], (32, 32))
    assert resized.shape == (32, 32) and resized.sum() == 64


def test_test_item_without_mask_is_good_by_default_fields() -> None:
    item = TestItem(Path("x.png"), 0, "good")
    assert item.mask_path is None
    assert not load_mask(item, (4, 5)).any()


def test_missing_test_folder_gives_empty_test_list(tmp_path: Path) -> None:
    _image(tmp_path / "train" / "good" / "a.png")
    assert load_category(tmp_path).test == []


def test_find_categories(tmp_path: Path) -> None:
    _make_category(tmp_path / "b")
    _make_category(tmp_path / "a")
    (tmp_path / "docs").mkdir()
    assert find_categories(tmp_path) == [tmp_path / "a", tmp_path / "b"]
    assert find_categories(tmp_path / "a") == [tmp_path / "a"]


def test_not_mvtec_layout_raises_with_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        find_categories(tmp_path / "empty")
    with pytest.raises(ValueError, match="missing"):
        find_categories(tmp_path / "missing")
    with pytest.raises(ValueError, match="train/good"):
        load_category(tmp_path / "empty")
    with pytest.raises(ValueError, match="missing"):
        load_category(tmp_path / "missing")
    (tmp_path / "bare" / "train" / "good").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        load_category(tmp_path / "bare")


def test_reads_generated_dataset(tmp_path: Path) -> None:
    root = generate_dataset(
        tmp_path,
        categories=["brick"],
        image_size=48,
        n_train=3,
        n_test_good=2,
        n_test_defect_per_type=1,
        defect_types=["hole", "scratch"],
    )
    (category_root,) = find_categories(root)
    category = load_category(category_root)
    assert len(category.train_good) == 3
    assert [t.label for t in category.test] == [0, 0, 1, 1]
    for item in category.test[2:]:
        assert item.mask_path is not None
        assert load_mask(item, (48, 48)).any()
