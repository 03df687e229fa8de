"""Reading datasets in the MVTec-AD folder layout.

A category folder holds ``train/good/*`` (good images to learn from),
``test/<type>/*`` (``good`` or a defect type) and optionally
``ground_truth/<type>/<stem>_mask.png`` (or ``<stem>.png``) with the defect
masks; nonzero mask pixels are defective.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from inspector.core.imageio import list_images, read_image

GOOD = "good"


@dataclass(frozen=True)
class TestItem:
    """One test image of a category.

    Attributes:
        path: The image file.
        label: 0 for good, 1 for defective.
        defect_type: Name of the ``test`` subfolder, ``"good"`` for good images.
        mask_path: Ground-truth mask file, ``None`` for good images or a missing mask.
    """

    __test__ = False  # not a pytest test class despite the name

    path: Path
    label: int
    defect_type: str
    mask_path: Path | None = None


@dataclass(frozen=True)
class Category:
    """A dataset category in MVTec-AD layout.

    Attributes:
        name: The category folder name.
        root: The category folder.
        train_good: Good training images, in natural order.
        test: Test images, grouped by type (``good`` first), natural order within.
    """

    name: str
    root: Path
    train_good: list[Path] = field(default_factory=list)
    test: list[TestItem] = field(default_factory=list)

    @property
    def defect_types(self) -> list[str]:
        """Defect types present in the test set, in order of appearance."""
        return list(dict.fromkeys(t.defect_type for t in self.test if t.label == 1))


def is_category(path: str | os.PathLike) -> bool:
    """True when ``path`` has a ``train/good`` folder."""
    return (Path(path) / "train" / GOOD).is_dir()


def find_categories(root: str | os.PathLike) -> list[Path]:
    """Category folders under a dataset root.

    Args:
        root: Either one category folder (it has ``train/good``) or a folder
            whose subfolders are categories.

    Returns:
        ``[root]`` for a category folder, else its category subfolders sorted by name.

    Raises:
        ValueError: if ``root`` is not a folder or holds no category.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    if is_category(root):
        return [root]
    found = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_category(p)
    )
    if not found:
        raise ValueError(
            f"{root}: not an MVTec-AD layout dataset"
            " (no train/good folder in it or in its subfolders)"
        )
    return found


def _find_mask(ground_truth: Path, defect_type: str, stem: str) -> Path | None:
    folder = ground_truth / defect_type
    if not folder.is_dir():
        return None
    candidates = {p.stem: p for p in list_images([folder], recursive=False).images}
    return candidates.get(f"{stem}_mask") or candidates.get(stem)


def load_category(root: str | os.PathLike) -> Category:
    """Read the file lists of one MVTec-AD-layout category.

    A missing ``test`` folder gives an empty test list; a defective test image
    without a mask file gets ``mask_path=None``.

    Args:
        root: The category folder.

    Raises:
        ValueError: if ``root`` is not a category folder or ``train/good`` has no images.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    if not is_category(root):
        raise ValueError(f"{root}: not an MVTec-AD layout category (no train/good folder)")
    train_good = list_images([root / "train" / GOOD]).images
    if not train_good:
        raise ValueError(f"{root / 'train' / GOOD}: contains no images")

    test: list[TestItem] = []
    test_dir = root / "test"
    if test_dir.is_dir():
        types = sorted(
            p.name for p in test_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        types.sort(key=lambda t: t != GOOD)
        for defect_type in types:
            label = 0 if defect_type == GOOD else 1
            for path in list_images([test_dir / defect_type]).images:
                mask = (
                    None
                    if label == 0
                    else _find_mask(root / "ground_truth", defect_type, path.stem)
                )
                test.append(TestItem(path, label, defect_type, mask))
    return Category(root.name, root, train_good, test)


def load_mask(item: TestItem, shape: tuple[int, ...]) -> np.ndarray:
    """The ground-truth mask of a test image as a bool array.

    Args:
        item: The test image.
        shape: Wanted ``(H, W)`` (further dimensions are ignored); the mask is
            resized with nearest-neighbour interpolation if it differs.

    Returns:
        ``HxW`` bool array, all False for good images or a missing mask.
    """
    h, w = int(shape[0]), int(shape[1])
    if item.label == 0 or item.mask_path is None:
        return np.zeros((h, w), bool)
    mask = read_image(item.mask_path).max(axis=2)
    if mask.shape != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return mask > 0
