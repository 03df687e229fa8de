"""Export MVTec-AD-layout datasets whose defects come from ``defect-synthesis``.

``defect-synthesis`` (PyPI, 0.1.0) is a procedural defect generator written
outside this project: scratches, branched cracks, stains, pitting, burns and
local texture warps, each returned with its own 0/255 mask. Drawing our test
defects with somebody else's generator keeps our own generator
(:mod:`inspector.datasets.synthetic`) from being the only judge.

Categories written by :func:`export_defect_synthesis`:

- ``dsyn-brick``, ``dsyn-grass``, ``dsyn-gravel``: crops of the gray CC0
  photographs in ``resources/textures`` (a fixed ``SOURCE_CROP`` px square at a
  random place, resized to ``size``, with a mild brightness jitter). The train,
  test-good and defect crops are drawn from the whole photograph, each split
  with its own seeded stream.
- ``dsyn-elpv-mono``: real electroluminescence images of good monocrystalline
  solar cells (ELPV, probability 0; see :mod:`inspector.datasets.elpv`) at their
  own 300 px. A seeded shuffle splits them into disjoint train, test-good and
  defect-source cells; the defects are drawn on the defect-source cells, so this
  is an aligned real part with exact masks. The images stay gray (an
  electroluminescence camera is monochrome): the generators' coloured output is
  converted back to gray.

The six generators take turns over the defective test images (``n_defect=60``
gives 10 of each), with their default parameters. Folder names are the
generator's defect type: ``scratch``, ``crack``, ``stain``, ``pit``, ``burn``,
``warp``; masks are ``ground_truth/<type>/<stem>_mask.png``. The generators
draw from Python's :mod:`random` and NumPy's global RNG; both are seeded for
every image (and restored afterwards), and a result without defect pixels is
retried with the next seed, so the same arguments always give the same bytes.
The generators work in OpenCV's BGR order (their stain and burn colours are
BGR), so they are handed BGR images.

Install the generator with ``pip install --no-deps defect-synthesis==0.1.0`` (its opencv-python requirement clashes with PySide6; or
``pip install 'inspector[eval]'``).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from inspector.core.imageio import read_image, write_image
from inspector.core.progress import Progress, silent
from inspector.datasets.elpv import (
    DatasetPackageMissing,
    load_cells,
    remove_stale_images,
    split_good,
)
from inspector.resources import resource_path

TEXTURE_BASES: tuple[str, ...] = ("brick", "grass", "gravel")
ELPV_BASE = "elpv"
BASES: tuple[str, ...] = (*TEXTURE_BASES, ELPV_BASE)
# Defect types in the order the generators take turns.
DEFECT_TYPES: tuple[str, ...] = ("scratch", "crack", "stain", "pit", "burn", "warp")
INSTALL_HINT = ("pip install --no-deps defect-synthesis==0.1.0 (--no-deps: it asks for opencv-python, "
                "whose bundled Qt plugins clash with PySide6; Inspector's OpenCV serves it)")

# Side of the texture square (source pixels) that becomes one image, whatever its size.
SOURCE_CROP = 192
# The generators place defects with fixed margins of up to ~95 px (warps of radius 90).
MIN_SIZE = 192
MAX_ATTEMPTS = 50
_SPLIT_CODES = {"train": 1, "test": 2, "defect": 3}


def category_name(base: str) -> str:
    """The category folder name for a base: ``dsyn-brick``, ..., ``dsyn-elpv-mono``."""
    return "dsyn-elpv-mono" if base == ELPV_BASE else f"dsyn-{base}"


def make_generators() -> list:
    """One instance of each ``defect-synthesis`` generator, in :data:`DEFECT_TYPES` order.

    Raises:
        DatasetPackageMissing: if ``defect-synthesis`` is not installed.
    """
    try:
        import defect_synthesis as ds
    except ImportError as exc:
        raise DatasetPackageMissing(
            f"the defect-synthesis generator is not installed; install it with: {INSTALL_HINT}"
        ) from exc
    return [
        ds.ScratchGenerator(),
        ds.CrackGenerator(),
        ds.StainGenerator(),
        ds.PittingGenerator(),
        ds.BurnGenerator(),
        ds.TextureWarpGenerator(),
    ]


def _stream(seed: int, category: str, split: str, index: int) -> list[int]:
    return [seed, zlib.crc32(category.encode()), _SPLIT_CODES[split], index]


def _rng(seed: int, category: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(_stream(seed, category, split, index))


@contextlib.contextmanager
def _global_rngs_seeded(value: int) -> Iterator[None]:
    """Seed :mod:`random` and NumPy's global RNG; put their previous states back afterwards."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(value)
    np.random.seed(value)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def draw_defect(
    generator, image_bgr: np.ndarray, seed_stream: list[int]
) -> tuple[np.ndarray, np.ndarray, str]:
    """Apply ``generator`` to a BGR image, retrying with the next seed until it marks pixels.

    Returns:
        ``(defective BGR image, HxW uint8 0/255 mask, defect type)``.

    Raises:
        RuntimeError: if :data:`MAX_ATTEMPTS` seeds all gave an empty mask.
    """
    for attempt in range(MAX_ATTEMPTS):
        value = int(np.random.SeedSequence([*seed_stream, attempt]).generate_state(1)[0])
        with _global_rngs_seeded(value):
            result = generator.apply(image_bgr.copy())
        mask = (np.asarray(result.anomaly_mask) > 0).astype(np.uint8) * 255
        if mask.any():
            return np.asarray(result.image, np.uint8), mask, str(result.defect_type.value)
    raise RuntimeError(
        f"{type(generator).__name__} drew no defect pixels in {MAX_ATTEMPTS} attempts"
    )


def _load_texture(name: str) -> np.ndarray:
    path = resource_path("textures", f"{name}.png")
    if not path.is_file():
        raise ValueError(f"no texture {name!r} in {path.parent}")
    return read_image(path)  # gray photographs, as HxWx3 (R = G = B)


def _texture_crop(texture: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``SOURCE_CROP`` square resized to ``size``, with a mild brightness jitter."""
    h, w = texture.shape[:2]
    if min(h, w) < SOURCE_CROP:
        raise ValueError(f"texture of {w}x{h} px is smaller than the {SOURCE_CROP} px crop")
    y = int(rng.integers(0, h - SOURCE_CROP + 1))
    x = int(rng.integers(0, w - SOURCE_CROP + 1))
    crop = texture[y : y + SOURCE_CROP, x : x + SOURCE_CROP]
    interpolation = cv2.INTER_AREA if size < SOURCE_CROP else cv2.INTER_CUBIC
    crop = cv2.resize(crop, (size, size), interpolation=interpolation).astype(np.float32)
    gain, offset = 1.0 + rng.uniform(-0.05, 0.05), rng.uniform(-4.0, 4.0)
    return np.clip(crop * gain + offset + 0.5, 0, 255).astype(np.uint8)


def _write_defect(
    base: Path, stem: str, image_rgb_or_gray: np.ndarray, mask: np.ndarray, defect_type: str
) -> list[Path]:
    image_path = base / "test" / defect_type / f"{stem}.png"
    mask_path = base / "ground_truth" / defect_type / f"{stem}_mask.png"
    write_image(image_path, image_rgb_or_gray)
    write_image(mask_path, mask)
    return [image_path, mask_path]


def _export_texture(
    out_dir: Path, name: str, generators: list, n_train: int, n_test_good: int,
    n_defect: int, size: int, seed: int, step,
) -> Path:
    category = category_name(name)
    base = out_dir / category
    texture = _load_texture(name)
    written: list[Path] = []
    for split, count in (("train", n_train), ("test", n_test_good)):
        folder = base / split / "good"
        for i in range(count):
            path = folder / f"{i:03d}.png"
            write_image(path, _texture_crop(texture, size, _rng(seed, category, split, i)))
            written.append(path)
            step(f"{category}: {split}/good/{path.name}")
    for i in range(n_defect):
        generator = generators[i % len(generators)]
        clean = _texture_crop(texture, size, _rng(seed, category, "defect", i))
        # the photographs are gray, so RGB and BGR are the same array here
        damaged, mask, kind = draw_defect(generator, clean, _stream(seed, category, "defect", i))
        stem = f"{i // len(generators):03d}"
        written += _write_defect(base, stem, cv2.cvtColor(damaged, cv2.COLOR_BGR2RGB), mask, kind)
        step(f"{category}: test/{kind}/{stem}.png")
    remove_stale_images(base, set(written))
    return base


def _export_elpv(
    out_dir: Path, generators: list, n_train: int, n_test_good: int, n_defect: int,
    seed: int, step,
) -> Path:
    category = category_name(ELPV_BASE)
    base = out_dir / category
    good = split_good([c for c in load_cells() if c.cell_type == "mono"], seed, category)
    needed = n_train + n_test_good + n_defect
    if needed > len(good):
        raise ValueError(
            f"{category}: {needed} cells asked for (train + test good + defect) but ELPV has"
            f" only {len(good)} good mono cells"
        )
    train = good[:n_train]
    test = good[n_train : n_train + n_test_good]
    sources = good[n_train + n_test_good : needed]
    written: list[Path] = []
    for split, cells in (("train", train), ("test", test)):
        for cell in cells:
            path = base / split / "good" / cell.path.name
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cell.path, path)  # as they are, like inspector.datasets.elpv
            written.append(path)
            step(f"{category}: {split}/good/{path.name}")
    for i, cell in enumerate(sources):
        generator = generators[i % len(generators)]
        gray = read_image(cell.path)[:, :, 0]
        clean = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        damaged, mask, kind = draw_defect(generator, clean, _stream(seed, category, "defect", i))
        written += _write_defect(
            base, cell.path.stem, cv2.cvtColor(damaged, cv2.COLOR_BGR2GRAY), mask, kind
        )
        step(f"{category}: test/{kind}/{cell.path.name}")
    remove_stale_images(base, set(written))
    return base


def export_defect_synthesis(
    out_dir: str | Path,
    *,
    bases: Sequence[str] = BASES,
    n_train: int = 100,
    n_test_good: int = 30,
    n_defect: int = 60,
    size: int = 256,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the ``dsyn-*`` categories in MVTec-AD layout under ``out_dir``.

    Args:
        out_dir: Dataset root, created if needed. Images in a written category's
            ``train``, ``test`` and ``ground_truth`` folders that this export did
            not write are deleted.
        bases: Any of ``brick``, ``grass``, ``gravel`` (texture photographs) and
            ``elpv`` (good mono ELPV cells).
        n_train: Good training images per category.
        n_test_good: Good test images per category.
        n_defect: Defective test images per category; the six generators take turns.
        size: Side of the texture images in pixels (ELPV cells keep their 300 px).
        seed: Random seed; the same arguments give byte-identical files.
        progress: Receives ``(done, total, message)`` after each image; may cancel.

    Returns:
        The category folders written, in the order of ``bases``.

    Raises:
        DatasetPackageMissing: if ``defect-synthesis`` (or, for ``elpv``,
            ``elpv-dataset``) is not installed.
        ValueError: for an unknown base, a too small size or negative counts.
    """
    unknown = [b for b in bases if b not in BASES]
    if unknown:
        raise ValueError(f"unknown bases {unknown}; available: {', '.join(BASES)}")
    if min(n_train, n_test_good, n_defect) < 0 or n_train == 0:
        raise ValueError("n_train must be positive and n_test_good, n_defect not negative")
    if any(b in TEXTURE_BASES for b in bases) and size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE} px for the generators' margins")
    out_dir = Path(out_dir)
    progress = progress or silent()
    generators = make_generators()
    if ELPV_BASE in bases:
        load_cells()  # fail before writing anything when elpv-dataset is missing
    total = (n_train + n_test_good + n_defect) * len(bases)
    done = 0

    def step(message: str) -> None:
        nonlocal done
        done += 1
        progress.update(done, total, message)

    written = []
    for base in bases:
        if base == ELPV_BASE:
            written.append(_export_elpv(out_dir, generators, n_train, n_test_good, n_defect, seed, step))
        else:
            written.append(
                _export_texture(
                    out_dir, base, generators, n_train, n_test_good, n_defect, size, seed, step
                )
            )
    return written
