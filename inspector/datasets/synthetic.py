"""A deterministic generator of MVTec-AD-layout datasets from real texture photographs.

Good images are randomly placed, slightly rotated and scaled crops of a texture
(``resources/textures``) with mild brightness, contrast, white-balance and
illumination jitter and sensor noise. Training crops come from the left 60 % of
the texture and test crops from the right 40 %, so no test image repeats a
training image. Defective test images get one defect from
:mod:`inspector.datasets.defects` and a ``0/255`` mask under ``ground_truth``.

Run ``python -m inspector.datasets.synthetic OUT_DIR`` to regenerate.
"""

from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspector.core.imageio import list_images, read_image, write_image
from inspector.core.progress import Progress, silent
from inspector.datasets.defects import DEFECT_TYPES, add_defect
from inspector.resources import resource_path

TEXTURES_DIR = resource_path("textures")

CATEGORIES: tuple[str, ...] = ("brick", "grass", "gravel")

# Dark and light end of the colour ramp that tints each gray texture (RGB).
_PALETTES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "brick": ((55, 22, 14), (238, 170, 130)),
    "grass": ((18, 38, 8), (200, 226, 120)),
    "gravel": ((40, 38, 36), (232, 226, 214)),
}
_NEUTRAL = ((0, 0, 0), (255, 255, 255))

# Side of the texture crop (source pixels) that becomes one image, whatever its size.
SOURCE_CROP = 176
# Training, test and defective crops are drawn independently from the whole texture,
# each with its own random stream: every image is a distinct crop, and all splits
# come from one distribution, as parts of one production run do. (Splitting the
# photograph into train and test areas was tried: with one 512 px photograph per
# category, crops of one area overlap each other far more than they overlap the
# other area, so good test images scored as a shifted population and no threshold
# calibrated on held-out training images could hold its false-reject rate.)
_MAX_ANGLE = 3.0
_MAX_SCALE = 0.03

_SPLIT_CODES = {"train": 1, "test": 2, "defect": 3, "foreign": 4}


@dataclass(frozen=True)
class DemoImages:
    """The small image set for the GUI demo.

    Attributes:
        reference_dir: Folder of good images to learn from.
        inspect_dir: One flat folder with good and defective images, shuffled.
        defective: The defective images in ``inspect_dir``.
        masks_dir: Ground-truth masks, ``<image stem>_mask.png``, for the defective images.
    """

    reference_dir: Path
    inspect_dir: Path
    defective: list[Path]
    masks_dir: Path


def available_categories(textures_dir: str | Path | None = None) -> list[str]:
    """Names of the textures that can be generated (the image file stems).

    Args:
        textures_dir: Folder of texture images; defaults to ``resources/textures``.
    """
    folder = Path(textures_dir) if textures_dir is not None else TEXTURES_DIR
    return [p.stem for p in list_images([folder], recursive=False).images]


def load_texture(name: str, textures_dir: str | Path | None = None) -> np.ndarray:
    """Read a texture and tint it with its category's colour ramp.

    Args:
        name: Category name, i.e. the texture file stem.
        textures_dir: Folder of texture images; defaults to ``resources/textures``.

    Returns:
        ``HxWx3`` uint8 RGB texture.

    Raises:
        ValueError: if no texture of that name exists.
    """
    folder = Path(textures_dir) if textures_dir is not None else TEXTURES_DIR
    matches = [p for p in list_images([folder], recursive=False).images if p.stem == name]
    if not matches:
        raise ValueError(
            f"no texture {name!r} in {folder}; available: {', '.join(available_categories(folder))}"
        )
    gray = read_image(matches[0]).astype(np.float32).mean(axis=2, keepdims=True) / 255.0
    dark, light = (np.array(c, np.float32) for c in _PALETTES.get(name, _NEUTRAL))
    return np.clip(dark + gray * (light - dark) + 0.5, 0, 255).astype(np.uint8)


def _rng(seed: int, category: str, split: str, *indices: int) -> np.random.Generator:
    return np.random.default_rng(
        [seed, zlib.crc32(category.encode()), _SPLIT_CODES[split], *indices]
    )


def _scaled_texture(texture: np.ndarray, image_size: int) -> np.ndarray:
    factor = image_size / SOURCE_CROP
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(texture, None, fx=factor, fy=factor, interpolation=interpolation)


def _crop(
    texture: np.ndarray, image_size: int, rng: np.random.Generator
) -> np.ndarray:
    """A randomly placed, rotated, scaled and flipped crop lying wholly inside the texture."""
    h, w = texture.shape[:2]
    y0, y1, x0, x1 = 0, h, 0, w
    angle = np.deg2rad(rng.uniform(-_MAX_ANGLE, _MAX_ANGLE))
    scale = 1.0 + rng.uniform(-_MAX_SCALE, _MAX_SCALE)
    half = 0.5 * image_size * scale * (abs(np.cos(angle)) + abs(np.sin(angle))) + 1.0
    if x1 - x0 < 2 * half or y1 - y0 < 2 * half:
        raise ValueError(f"texture of {w}x{h} px is too small for {image_size} px crops")
    cx = rng.uniform(x0 + half, x1 - half)
    cy = rng.uniform(y0 + half, y1 - half)
    flip_x, flip_y = rng.choice([-1.0, 1.0], size=2)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    centre = 0.5 * (image_size - 1)
    # maps output pixel coordinates to texture coordinates (used with WARP_INVERSE_MAP)
    a = np.array([[c * flip_x, -s * flip_y], [s * flip_x, c * flip_y]])
    t = np.array([cx, cy]) - a @ np.array([centre, centre])
    matrix = np.hstack([a, t[:, None]]).astype(np.float64)
    return cv2.warpAffine(
        texture,
        matrix,
        (image_size, image_size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT,
    )


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild camera and lighting variation: gain, offset, white balance, gradient, noise."""
    size = image.shape[0]
    out = image.astype(np.float32)
    mean = out.mean()
    contrast = 1.0 + rng.normal(0, 0.03)
    out = (out - mean) * contrast + mean * (1.0 + rng.normal(0, 0.03))
    out *= 1.0 + rng.normal(0, 0.01, size=3).astype(np.float32)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    out *= (1.0 + rng.uniform(0, 0.03) * gradient)[..., None]
    out += rng.normal(0, 1.5, size=out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _good_image(
    texture: np.ndarray, image_size: int, rng: np.random.Generator
) -> np.ndarray:
    return _photometric(_crop(texture, image_size, rng), rng)


def _defective_image(
    texture: np.ndarray,
    foreign_texture: np.ndarray,
    defect_type: str,
    image_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    clean = _crop(texture, image_size, rng)
    foreign = _crop(foreign_texture, image_size, rng)
    damaged, mask = add_defect(clean, defect_type, rng, foreign)
    return _photometric(damaged, rng), mask


def _foreign_name(category: str, names: Sequence[str]) -> str:
    others = [n for n in names if n != category]
    return others[zlib.crc32(category.encode()) % len(others)] if others else category


def generate_dataset(
    root: str | Path,
    categories: Sequence[str] | None = None,
    image_size: int = 256,
    n_train: int = 100,
    n_test_good: int = 20,
    n_test_defect_per_type: int = 10,
    seed: int = 0,
    progress: Progress | None = None,
    defect_types: Sequence[str] | None = None,
    textures_dir: str | Path | None = None,
) -> Path:
    """Write an MVTec-AD-layout dataset of textures with drawn defects.

    Layout per category: ``<cat>/train/good/NNN.png``, ``<cat>/test/good/NNN.png``,
    ``<cat>/test/<defect>/NNN.png`` and ``<cat>/ground_truth/<defect>/NNN_mask.png``
    (uint8, 0 or 255). The same arguments always give the same files, and each
    category's images do not depend on which other categories are generated.

    Args:
        root: Output folder, created if needed; files of the same names are overwritten,
            others (e.g. from an earlier, larger run) are left alone.
        categories: Texture names; defaults to all available.
        image_size: Side of the square images in pixels.
        n_train: Good training images per category.
        n_test_good: Good test images per category.
        n_test_defect_per_type: Defective test images per category and defect type.
        seed: Random seed.
        progress: Receives ``(done, total, message)`` after each image; may cancel.
        defect_types: Defect types to draw; defaults to all of :data:`DEFECT_TYPES`.
        textures_dir: Folder of texture images; defaults to ``resources/textures``.

    Returns:
        The dataset root.

    Raises:
        ValueError: for an unknown category or defect type, or a too large image size.
    """
    root = Path(root)
    progress = progress or silent()
    names = available_categories(textures_dir)
    categories = list(categories) if categories is not None else names
    unknown = [c for c in categories if c not in names]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; available: {', '.join(names)}")
    defect_types = list(defect_types) if defect_types is not None else list(DEFECT_TYPES)
    bad = [d for d in defect_types if d not in DEFECT_TYPES]
    if bad:
        raise ValueError(f"unknown defect types {bad}; available: {', '.join(DEFECT_TYPES)}")

    per_category = n_train + n_test_good + n_test_defect_per_type * len(defect_types)
    total, done = per_category * len(categories), 0
    for category in categories:
        texture = _scaled_texture(load_texture(category, textures_dir), image_size)
        foreign = _scaled_texture(
            load_texture(_foreign_name(category, names), textures_dir), image_size
        )
        base = root / category
        for i in range(n_train):
            write_image(
                base / "train" / "good" / f"{i:03d}.png",
                _good_image(texture, image_size, _rng(seed, category, "train", i)),
            )
            done += 1
            progress.update(done, total, f"{category}: train/good/{i:03d}.png")
        for i in range(n_test_good):
            write_image(
                base / "test" / "good" / f"{i:03d}.png",
                _good_image(texture, image_size, _rng(seed, category, "test", i)),
            )
            done += 1
            progress.update(done, total, f"{category}: test/good/{i:03d}.png")
        for defect_type in defect_types:
            code = DEFECT_TYPES.index(defect_type)
            for i in range(n_test_defect_per_type):
                rng = _rng(seed, category, "defect", code, i)
                image, mask = _defective_image(texture, foreign, defect_type, image_size, rng)
                write_image(base / "test" / defect_type / f"{i:03d}.png", image)
                write_image(
                    base / "ground_truth" / defect_type / f"{i:03d}_mask.png",
                    mask.astype(np.uint8) * 255,
                )
                done += 1
                progress.update(done, total, f"{category}: test/{defect_type}/{i:03d}.png")
    return root


def make_demo_images(
    out_dir: str | Path,
    category: str = "brick",
    n_reference: int = 50,
    n_good: int = 40,
    n_defect: int = 10,
    image_size: int = 256,
    seed: int = 0,
    progress: Progress | None = None,
    textures_dir: str | Path | None = None,
) -> DemoImages:
    """Write a small demo set: good reference images and a mixed folder to inspect.

    Writes ``out_dir/reference/ref_NNN.png`` (good),
    ``out_dir/inspect/img_NNN.png`` (``n_good`` good and ``n_defect`` defective
    images, shuffled; defect types cycle through
    :data:`DEFECT_TYPES`) and ``out_dir/masks/img_NNN_mask.png`` for the defective ones.

    Args:
        out_dir: Output folder, created if needed.
        category: Texture name.
        n_reference: Good reference images.
        n_good: Good images in the inspection folder.
        n_defect: Defective images in the inspection folder.
        image_size: Side of the square images in pixels.
        seed: Random seed.
        progress: Receives ``(done, total, message)`` after each image; may cancel.
        textures_dir: Folder of texture images; defaults to ``resources/textures``.

    Returns:
        Where the images went.
    """
    out_dir = Path(out_dir)
    progress = progress or silent()
    names = available_categories(textures_dir)
    if category not in names:
        raise ValueError(f"unknown category {category!r}; available: {', '.join(names)}")
    texture = _scaled_texture(load_texture(category, textures_dir), image_size)
    foreign = _scaled_texture(
        load_texture(_foreign_name(category, names), textures_dir), image_size
    )
    reference_dir, inspect_dir, masks_dir = (
        out_dir / "reference",
        out_dir / "inspect",
        out_dir / "masks",
    )
    total, done = n_reference + n_good + n_defect, 0
    for i in range(n_reference):
        write_image(
            reference_dir / f"ref_{i:03d}.png",
            _good_image(texture, image_size, _rng(seed, category, "train", i)),
        )
        done += 1
        progress.update(done, total, f"reference/ref_{i:03d}.png")
    order = np.random.default_rng([seed, zlib.crc32(b"demo")]).permutation(n_good + n_defect)
    defective = []
    for slot, i in enumerate(order):
        path = inspect_dir / f"img_{slot:03d}.png"
        if i < n_good:
            write_image(
                path, _good_image(texture, image_size, _rng(seed, category, "test", int(i)))
            )
        else:
            k = int(i) - n_good
            defect_type = DEFECT_TYPES[k % len(DEFECT_TYPES)]
            rng = _rng(
                seed, category, "defect", DEFECT_TYPES.index(defect_type), k // len(DEFECT_TYPES)
            )
            image, mask = _defective_image(texture, foreign, defect_type, image_size, rng)
            write_image(path, image)
            write_image(masks_dir / f"{path.stem}_mask.png", mask.astype(np.uint8) * 255)
            defective.append(path)
        done += 1
        progress.update(done, total, f"inspect/{path.name}")
    return DemoImages(reference_dir, inspect_dir, sorted(defective), masks_dir)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the dataset generator's command-line arguments to ``parser``."""
    parser.add_argument("out_dir", type=Path, help="output folder (MVTec-AD layout)")
    parser.add_argument(
        "--categories",
        nargs="+",
        metavar="NAME",
        help=f"textures (default: all; shipped: {', '.join(CATEGORIES)})",
    )
    parser.add_argument(
        "--defects",
        nargs="+",
        metavar="TYPE",
        choices=DEFECT_TYPES,
        help="defect types (default: all)",
    )
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument(
        "--train", type=int, default=100, help="good training images per category (default 100)"
    )
    parser.add_argument(
        "--test-good", type=int, default=20, help="good test images per category (default 20)"
    )
    parser.add_argument(
        "--test-defect",
        type=int,
        default=10,
        help="test images per defect type and category (default 10)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Generate the dataset described by parsed :func:`add_arguments` arguments.

    Returns:
        The process exit code.
    """
    start = time.monotonic()

    def report(done: int, total: int, message: str) -> None:
        if done == total or done % 50 == 0:
            print(f"[{done}/{total}] {message}", file=sys.stderr)

    try:
        root = generate_dataset(
            args.out_dir,
            categories=args.categories,
            image_size=args.size,
            n_train=args.train,
            n_test_good=args.test_good,
            n_test_defect_per_type=args.test_defect,
            seed=args.seed,
            progress=Progress(report),
            defect_types=args.defects,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {root} in {time.monotonic() - start:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m inspector.datasets.synthetic",
        description="Generate a synthetic MVTec-AD-layout anomaly detection dataset from textures.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
