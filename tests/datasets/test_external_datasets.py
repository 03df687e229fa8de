"""Tests of the exporters of data this project did not make: ELPV cells and defect-synthesis defects."""

from __future__ import annotations

import argparse
import functools
import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from inspector.core.imageio import read_image
from inspector.datasets.mvtec import find_categories, load_category


def _make_dataset(argv: list[str]) -> int:
    """``inspector make-dataset`` (its parser and run; the full CLI parser would import torch)."""
    from inspector.cli import dataset_cmd
    from inspector.cli.main import COMMANDS

    assert COMMANDS["make-dataset"] is dataset_cmd
    parser = argparse.ArgumentParser(prog="inspector make-dataset")
    dataset_cmd.add_arguments(parser)
    return dataset_cmd.run(parser.parse_args(argv))

DSYN_TYPES = {"scratch", "crack", "stain", "pit", "burn", "warp"}
LIMIT = 6  # good and defective ELPV cells per type in the small export
N_TRAIN, N_TEST_GOOD, N_DEFECT, SIZE = 12, 4, 12, 192


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.png")}


@pytest.fixture(scope="module")
def elpv_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("elpv_dataset")
    from inspector.datasets.elpv import export_elpv

    root = tmp_path_factory.mktemp("elpv")
    written = export_elpv(root, seed=1, limit=LIMIT)
    assert written == [root / "elpv-mono", root / "elpv-poly"]
    return root


@pytest.fixture(scope="module")
def dsyn_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("defect_synthesis")
    pytest.importorskip("elpv_dataset")
    from inspector.datasets.defect_synthesis import export_defect_synthesis

    root = tmp_path_factory.mktemp("dsyn")
    export_defect_synthesis(
        root, n_train=N_TRAIN, n_test_good=N_TEST_GOOD, n_defect=N_DEFECT, size=SIZE, seed=5
    )
    return root


# --- ELPV ---------------------------------------------------------------------------------


def test_elpv_layout_counts_and_original_files(elpv_export: Path) -> None:
    from inspector.datasets.elpv import DEFECT_FOLDER, elpv_data_dir

    source = elpv_data_dir() / "images"
    assert [p.name for p in find_categories(elpv_export)] == ["elpv-mono", "elpv-poly"]
    for name in ("elpv-mono", "elpv-poly"):
        base = elpv_export / name
        train, test_good = _names(base / "train" / "good"), _names(base / "test" / "good")
        defective = _names(base / "test" / DEFECT_FOLDER)
        assert (len(train), len(test_good), len(defective)) == (4, 2, LIMIT)  # round(0.7 * 6) = 4
        assert not train & test_good
        assert sorted(p.name for p in (base / "test").iterdir()) == ["defective", "good"]
        assert not (base / "ground_truth").exists()
        for path in base.rglob("*.png"):
            assert path.name.startswith("cell") and path.read_bytes() == (source / path.name).read_bytes()
        category = load_category(base)
        assert len(category.train_good) == 4
        assert [t.label for t in category.test] == [0, 0] + [1] * LIMIT
        assert all(t.mask_path is None for t in category.test)
        assert category.defect_types == ["defective"]
        assert read_image(category.train_good[0]).shape == (300, 300, 3)


def test_elpv_labels_and_uncertain_cells_left_out(elpv_export: Path) -> None:
    from inspector.datasets.elpv import DEFECT_FOLDER, load_cells

    cells = {c.path.name: c for c in load_cells()}
    counts = {(t, round(3 * c.probability)) for c in cells.values() for t in [c.cell_type]}
    assert {("mono", k) for k in range(4)} <= counts  # all four annotation levels exist
    for name, cell_type in (("elpv-mono", "mono"), ("elpv-poly", "poly")):
        base = elpv_export / name
        for split in ("train/good", "test/good"):
            for file in _names(base / split):
                assert cells[file].probability == 0 and cells[file].cell_type == cell_type
        for file in _names(base / "test" / DEFECT_FOLDER):
            assert cells[file].probability >= 2 / 3 - 1e-6 and cells[file].cell_type == cell_type
    good_mono = sum(1 for c in cells.values() if c.cell_type == "mono" and c.good)
    assert good_mono == 588


def test_elpv_split_is_seeded(elpv_export: Path, tmp_path: Path) -> None:
    from inspector.datasets.elpv import export_elpv

    export_elpv(tmp_path / "same", seed=1, limit=LIMIT)
    assert _files(tmp_path / "same") == _files(elpv_export)
    export_elpv(tmp_path / "other", seed=2, limit=LIMIT, types=("mono",))
    assert _names(tmp_path / "other/elpv-mono/train/good") != _names(elpv_export / "elpv-mono/train/good")


def test_elpv_reexport_removes_stale_split(tmp_path: Path) -> None:
    pytest.importorskip("elpv_dataset")
    from inspector.datasets.elpv import export_elpv

    export_elpv(tmp_path, seed=1, limit=LIMIT, types=("mono",))
    export_elpv(tmp_path, seed=2, limit=LIMIT, types=("mono",))
    base = tmp_path / "elpv-mono"
    train, test = _names(base / "train" / "good"), _names(base / "test" / "good")
    assert len(train) == 4 and len(test) == 2 and not train & test


def test_elpv_missing_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from inspector.datasets import elpv

    def missing(name: str):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(elpv.resources, "files", missing)
    with pytest.raises(elpv.DatasetPackageMissing, match="pip install elpv-dataset"):
        elpv.export_elpv("unused")


# --- defect-synthesis ---------------------------------------------------------------------


def test_dsyn_layout_and_counts(dsyn_export: Path) -> None:
    names = ["dsyn-brick", "dsyn-elpv-mono", "dsyn-grass", "dsyn-gravel"]
    assert [p.name for p in find_categories(dsyn_export)] == names
    for name in names:
        base = dsyn_export / name
        assert len(_names(base / "train" / "good")) == N_TRAIN
        assert len(_names(base / "test" / "good")) == N_TEST_GOOD
        assert {p.name for p in (base / "test").iterdir()} == DSYN_TYPES | {"good"}
        assert {p.name for p in (base / "ground_truth").iterdir()} == DSYN_TYPES  # no good masks
        for kind in DSYN_TYPES:
            images = sorted((base / "test" / kind).glob("*.png"))
            masks = sorted((base / "ground_truth" / kind).glob("*.png"))
            assert len(images) == N_DEFECT // len(DSYN_TYPES)
            assert [p.stem + "_mask.png" for p in images] == [m.name for m in masks]


def test_dsyn_masks_binary_nonempty_and_aligned(dsyn_export: Path) -> None:
    for name in ("dsyn-brick", "dsyn-grass", "dsyn-gravel", "dsyn-elpv-mono"):
        category = load_category(dsyn_export / name)
        size = 300 if name == "dsyn-elpv-mono" else SIZE
        assert len(category.train_good) == N_TRAIN
        defective = [t for t in category.test if t.label == 1]
        assert len(defective) == N_DEFECT and all(t.mask_path is not None for t in defective)
        for item in defective:
            mask = cv2.imread(str(item.mask_path), cv2.IMREAD_UNCHANGED)
            assert mask.shape == (size, size) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 255}
            assert read_image(item.path).shape == (size, size, 3)
        assert all(t.mask_path is None for t in category.test if t.label == 0)


def test_dsyn_elpv_uses_disjoint_good_mono_cells_kept_gray(dsyn_export: Path) -> None:
    from inspector.datasets.elpv import elpv_data_dir, load_cells

    cells = {c.path.name: c for c in load_cells()}
    base = dsyn_export / "dsyn-elpv-mono"
    train, test = _names(base / "train" / "good"), _names(base / "test" / "good")
    sources = {p.name for kind in DSYN_TYPES for p in (base / "test" / kind).glob("*.png")}
    assert len(sources) == N_DEFECT and not (train & test or train & sources or test & sources)
    for file in train | test | sources:
        assert cells[file].cell_type == "mono" and cells[file].good
    for file in train:
        assert (base / "train" / "good" / file).read_bytes() == (elpv_data_dir() / "images" / file).read_bytes()
    for path in (base / "test").rglob("*.png"):
        assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ndim == 2  # the EL camera is monochrome


def test_dsyn_defects_change_the_image_inside_the_mask(dsyn_export: Path) -> None:
    from inspector.datasets.elpv import elpv_data_dir

    base = dsyn_export / "dsyn-elpv-mono"
    for kind in DSYN_TYPES - {"warp"}:  # a warp of a flat area may change almost nothing
        for path in (base / "test" / kind).glob("*.png"):
            damaged = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).astype(int)
            clean = cv2.imread(str(elpv_data_dir() / "images" / path.name), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(base / "ground_truth" / kind / f"{path.stem}_mask.png"), 0) > 0
            assert np.abs(damaged - clean)[mask].mean() > 5, path


def test_dsyn_is_deterministic_and_leaves_global_rngs_alone(dsyn_export: Path, tmp_path: Path) -> None:
    from inspector.datasets.defect_synthesis import export_defect_synthesis

    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    export_defect_synthesis(
        tmp_path, n_train=N_TRAIN, n_test_good=N_TEST_GOOD, n_defect=N_DEFECT, size=SIZE, seed=5
    )
    assert (random.random(), np.random.random()) == expected
    assert _files(tmp_path) == _files(dsyn_export)


def test_dsyn_seed_changes_images_and_bad_arguments_fail(tmp_path: Path) -> None:
    pytest.importorskip("defect_synthesis")
    from inspector.datasets.defect_synthesis import export_defect_synthesis

    for seed in (0, 1):
        export_defect_synthesis(
            tmp_path / str(seed), bases=("gravel",), n_train=2, n_test_good=1, n_defect=6, seed=seed,
            size=SIZE,
        )
    assert _files(tmp_path / "0").keys() == _files(tmp_path / "1").keys()
    assert _files(tmp_path / "0") != _files(tmp_path / "1")
    with pytest.raises(ValueError, match="unknown bases"):
        export_defect_synthesis(tmp_path, bases=("marble",))
    with pytest.raises(ValueError, match="at least"):
        export_defect_synthesis(tmp_path, bases=("brick",), size=64)


# --- command line -------------------------------------------------------------------------


def test_make_dataset_kind_all_gives_a_benchmark_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("defect_synthesis")
    pytest.importorskip("elpv_dataset")
    from inspector.datasets import defect_synthesis, elpv

    # the real exporters, made small so that the test stays fast
    monkeypatch.setattr(elpv, "export_elpv", functools.partial(elpv.export_elpv, limit=4))
    monkeypatch.setattr(
        defect_synthesis,
        "export_defect_synthesis",
        functools.partial(defect_synthesis.export_defect_synthesis, n_train=3, n_test_good=1, n_defect=6),
    )
    argv = [str(tmp_path), "--kind", "all", "--size", str(SIZE),
            "--train", "3", "--test-good", "1", "--test-defect", "1", "--categories", "brick"]
    assert _make_dataset(argv) == 0
    names = [p.name for p in find_categories(tmp_path)]
    assert names == ["brick", "dsyn-brick", "dsyn-elpv-mono", "dsyn-grass", "dsyn-gravel",
                     "elpv-mono", "elpv-poly"]
    out = capsys.readouterr().out
    assert "7 categories" in out
    for name in names:
        assert name in out
        load_category(tmp_path / name)


def test_make_dataset_default_is_still_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(tmp_path), "--size", "32", "--train", "2", "--test-good", "1",
            "--test-defect", "1", "--categories", "grass", "--defects", "crack"]
    assert _make_dataset(argv) == 0
    assert [p.name for p in find_categories(tmp_path)] == ["grass"]
    assert "grass" in capsys.readouterr().out
    category = load_category(tmp_path / "grass")
    assert len(category.train_good) == 2 and category.defect_types == ["crack"]
