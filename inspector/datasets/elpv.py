"""Export the ELPV solar-cell dataset in the MVTec-AD layout.

ELPV (Deitsch et al., "Automatic classification of defective photovoltaic module
cells in electroluminescence images", Solar Energy 2019; Buerhop-Lutz et al.
2018) holds 2,624 real electroluminescence images of mono- and polycrystalline
solar cells, 300x300 px, 8-bit gray, each with a defect probability given by
expert annotators: 0, 1/3, 2/3 or 1. It installs offline from PyPI as
``elpv-dataset`` (``pip install elpv-dataset`` or ``pip install inspector[eval]``).

:func:`export_elpv` writes two categories, ``elpv-mono`` and ``elpv-poly``:

- ``train/good`` and ``test/good``: the cells of probability 0, shuffled with a
  fixed seed; ``train_fraction`` of them (70 % by default) go to training, the
  rest to the test set.
- ``test/defective``: the cells of probability 2/3 and 1.
- Cells of probability 1/3 (the annotators were unsure, most of them are not
  defective) are left out of both splits: they are neither a clean good
  reference nor a confirmed defect.

There is no ``ground_truth`` folder: ELPV labels whole cells, it has no defect
masks, so only image-level metrics can be computed. The files are copied byte
for byte and keep their original names (``cell0001.png``) so that every result
can be traced back to the dataset; Inspector's reader turns the gray PNGs into
RGB when it loads them. Images in the categories' ``train``, ``test`` and
``ground_truth`` folders that the export did not write (from an earlier export
with another seed) are deleted, so that no cell lands in both splits.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from inspector.core.imageio import is_image_path
from inspector.core.progress import Progress, silent

TYPES: tuple[str, ...] = ("mono", "poly")
DEFECT_FOLDER = "defective"
INSTALL_HINT = "pip install elpv-dataset==1.0.0.post1 (or pip install 'inspector[eval]')"


class DatasetPackageMissing(ImportError):
    """A PyPI package holding an evaluation dataset or generator is not installed."""


@dataclass(frozen=True)
class Cell:
    """One labelled ELPV cell image.

    Attributes:
        path: The PNG file inside the installed package.
        probability: Annotated defect probability, 0, 1/3, 2/3 or 1.
        cell_type: ``"mono"`` or ``"poly"``.
    """

    path: Path
    probability: float
    cell_type: str

    @property
    def good(self) -> bool:
        """Annotated as certainly not defective (probability 0)."""
        return self.probability < 1e-6

    @property
    def defective(self) -> bool:
        """Annotated as defective with probability 2/3 or 1."""
        return self.probability >= 2.0 / 3.0 - 1e-6


def elpv_data_dir() -> Path:
    """The ``data`` folder of the installed ``elpv-dataset`` package.

    Raises:
        DatasetPackageMissing: if the package is not installed or lacks its data.
    """
    try:
        root = resources.files("elpv_dataset")
    except ImportError as exc:
        raise DatasetPackageMissing(
            f"the ELPV solar-cell dataset is not installed; install it with: {INSTALL_HINT}"
        ) from exc
    data = Path(str(root)) / "data"
    if not (data / "labels.csv").is_file() or not (data / "images").is_dir():
        raise DatasetPackageMissing(
            f"the elpv_dataset package at {root} has no data/labels.csv and data/images;"
            f" reinstall it with: {INSTALL_HINT}"
        )
    return data


def load_cells(data_dir: str | Path | None = None) -> list[Cell]:
    """All labelled cells, in the order of ``labels.csv``.

    Args:
        data_dir: The dataset's ``data`` folder; defaults to the installed package's.

    Raises:
        DatasetPackageMissing: if the package is not installed.
        ValueError: for a malformed line in ``labels.csv``.
    """
    data = Path(data_dir) if data_dir is not None else elpv_data_dir()
    cells = []
    labels = data / "labels.csv"
    for number, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or fields[2] not in TYPES:
            raise ValueError(f"{labels}:{number}: expected 'path probability mono|poly', got {line!r}")
        cells.append(Cell(data / fields[0], float(fields[1]), fields[2]))
    return cells


def remove_stale_images(category: Path, written: set[Path]) -> None:
    """Delete image files under ``category``'s ``train``, ``test`` and ``ground_truth``
    folders that this export did not write (left by an earlier run with other
    arguments, they could put one image in both train and test)."""
    for split in ("train", "test", "ground_truth"):
        folder = category / split
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.is_file() and is_image_path(path) and path not in written:
                    path.unlink()


def split_good(cells: list[Cell], seed: int, salt: str) -> list[Cell]:
    """The good cells in a fixed pseudo-random order that depends only on ``seed`` and ``salt``."""
    good = sorted((c for c in cells if c.good), key=lambda c: c.path.name)
    random.Random(f"{seed}:{salt}").shuffle(good)
    return good


def export_elpv(
    out_dir: str | Path,
    *,
    seed: int = 0,
    train_fraction: float = 0.7,
    progress: Progress | None = None,
    types: tuple[str, ...] = TYPES,
    limit: int | None = None,
) -> list[Path]:
    """Write ``elpv-mono`` and ``elpv-poly`` in MVTec-AD layout under ``out_dir``.

    Args:
        out_dir: Dataset root, created if needed; files of the same names are overwritten.
        seed: Seed of the good-cell shuffle that decides train and test.
        train_fraction: Share of the good cells that go to ``train/good``.
        progress: Receives ``(done, total, message)`` after each file; may cancel.
        types: Cell types to export, a subset of ``("mono", "poly")``.
        limit: At most this many good and this many defective cells per type
            (the first of the shuffled good cells, the first defective cells by
            name); for quick tests. ``None`` exports everything.

    Returns:
        The category folders written.

    Raises:
        DatasetPackageMissing: if ``elpv-dataset`` is not installed.
        ValueError: for a bad ``train_fraction`` or cell type.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    unknown = [t for t in types if t not in TYPES]
    if unknown:
        raise ValueError(f"unknown ELPV cell types {unknown}; available: {', '.join(TYPES)}")
    out_dir = Path(out_dir)
    progress = progress or silent()
    cells = load_cells()

    plan: list[tuple[Path, Path]] = []
    categories = []
    for cell_type in types:
        of_type = [c for c in cells if c.cell_type == cell_type]
        good = split_good(of_type, seed, cell_type)
        defective = sorted((c for c in of_type if c.defective), key=lambda c: c.path.name)
        if limit is not None:
            good, defective = good[:limit], defective[:limit]
        n_train = min(max(1, round(len(good) * train_fraction)), len(good))
        base = out_dir / f"elpv-{cell_type}"
        categories.append(base)
        plan += [(c.path, base / "train" / "good" / c.path.name) for c in good[:n_train]]
        plan += [(c.path, base / "test" / "good" / c.path.name) for c in good[n_train:]]
        plan += [(c.path, base / "test" / DEFECT_FOLDER / c.path.name) for c in defective]

    for done, (source, target) in enumerate(plan, 1):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        progress.update(done, len(plan), str(target.relative_to(out_dir)))
    written = {target for _, target in plan}
    for base in categories:
        remove_stale_images(base, written)
    return categories
