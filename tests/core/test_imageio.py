"""Reading images of every supported kind into HxWx3 uint8 RGB, and listing image folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inspector.core.imageio import ImageReadError, list_images, read_image, to_rgb8

# Three distinct colours, so that any channel swap (RGB <-> BGR) or channel loss shows.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
ORANGE = (250, 120, 10)


def _colour_strip() -> np.ndarray:
    """A 12x30 RGB image: left third red, middle green, right third orange."""
    image = np.zeros((12, 30, 3), np.uint8)
    image[:, :10] = RED
    image[:, 10:20] = GREEN
    image[:, 20:] = ORANGE
    return image


def _assert_rgb8(image: np.ndarray, shape_hw: tuple[int, int]) -> None:
    assert image.dtype == np.uint8
    assert image.shape == (*shape_hw, 3)


def _assert_strip(image: np.ndarray, tol: int = 0) -> None:
    _assert_rgb8(image, (12, 30))
    for column, colour in ((5, RED), (15, GREEN), (25, ORANGE)):
        np.testing.assert_allclose(image[6, column].astype(int), colour, atol=tol)


# ---- PNG -----------------------------------------------------------------------------------

def test_png_rgb_channel_order(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(_colour_strip(), "RGB").save(path)
    image = read_image(path)
    _assert_strip(image)
    np.testing.assert_array_equal(image, _colour_strip())


def test_pure_red_stays_red(tmp_path: Path) -> None:
    path = tmp_path / "red.png"
    Image.new("RGB", (7, 5), RED).save(path)
    image = read_image(path)
    _assert_rgb8(image, (5, 7))
    assert (image[..., 0] == 255).all() and (image[..., 1:] == 0).all()


def test_png_gray_8bit(tmp_path: Path) -> None:
    gray = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    path = tmp_path / "gray8.png"
    assert cv2.imwrite(str(path), gray)
    image = read_image(path)
    _assert_rgb8(image, (4, 6))
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def test_png_gray_16bit_scaled_to_8bit(tmp_path: Path) -> None:
    gray = np.array([[0, 257, 257 * 100], [257 * 200, 65534, 65535]], dtype=np.uint16)
    path = tmp_path / "gray16.png"
    assert cv2.imwrite(str(path), gray)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16  # really written as 16 bit
    image = read_image(path)
    _assert_rgb8(image, (2, 3))
    expected = np.array([[0, 1, 100], [200, 255, 255]], dtype=np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], expected)


def test_png_rgb_16bit(tmp_path: Path) -> None:
    rgb16 = _colour_strip().astype(np.uint16) * 257
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    _assert_strip(read_image(path))


def test_png_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((12, 30, 4), np.uint8)
    rgba[..., :3] = _colour_strip()
    rgba[..., 3] = 60  # mostly transparent: colours must still come back as stored
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    _assert_strip(read_image(path))


def test_png_gray_with_alpha(tmp_path: Path) -> None:
    la = np.zeros((3, 4, 2), np.uint8)
    la[..., 0] = 77
    la[..., 1] = 200
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    image = read_image(path)
    _assert_rgb8(image, (3, 4))
    assert (image == 77).all()


def test_png_palette(tmp_path: Path) -> None:
    indices = np.zeros((12, 30), np.uint8)
    indices[:, 10:20] = 1
    indices[:, 20:] = 2
    palette_image = Image.fromarray(indices, "P")
    palette_image.putpalette([*RED, *GREEN, *ORANGE] + [0] * (3 * 253))
    path = tmp_path / "palette.png"
    palette_image.save(path)
    assert Image.open(path).mode == "P"
    _assert_strip(read_image(path))


def test_png_one_bit(tmp_path: Path) -> None:
    bits = np.zeros((4, 8), bool)
    bits[:, 4:] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).convert("1").save(path)
    image = read_image(path)
    _assert_rgb8(image, (4, 8))
    assert (image[:, :4] == 0).all() and (image[:, 4:] == 255).all()


# ---- JPEG ----------------------------------------------------------------------------------

def test_jpeg_colours(tmp_path: Path) -> None:
    path = tmp_path / "strip.jpg"
    Image.fromarray(_colour_strip(), "RGB").save(path, quality=98, subsampling=0)
    _assert_strip(read_image(path), tol=12)


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 20 high x 40 wide, red on the left; Orientation 6 = displayed rotated 90 deg clockwise,
    # so the image must come back 40 high x 20 wide with the red part at the top.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :10] = RED
    stored[:, 10:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored, "RGB").save(path, exif=exif.tobytes(), quality=95)
    assert Image.open(path).getexif().get(0x0112) == 6

    image = read_image(path)
    _assert_rgb8(image, (40, 20))
    np.testing.assert_allclose(image[3, 10].astype(int), RED, atol=12)
    np.testing.assert_allclose(image[-3, 10].astype(int), (0, 0, 255), atol=12)


def test_jpeg_without_orientation_is_not_rotated(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    path = tmp_path / "plain.jpg"
    Image.fromarray(stored, "RGB").save(path)
    _assert_rgb8(read_image(path), (20, 40))


def test_jpeg_grayscale(tmp_path: Path) -> None:
    path = tmp_path / "gray.jpg"
    Image.new("L", (9, 5), 128).save(path, quality=100)
    image = read_image(path)
    _assert_rgb8(image, (5, 9))
    assert np.abs(image.astype(int) - 128).max() <= 2


# ---- BMP and TIFF --------------------------------------------------------------------------

def test_bmp(tmp_path: Path) -> None:
    path = tmp_path / "strip.bmp"
    Image.fromarray(_colour_strip(), "RGB").save(path)
    np.testing.assert_array_equal(read_image(path), _colour_strip())


@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_tiff_8bit_rgb(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"strip{suffix}"
    Image.fromarray(_colour_strip(), "RGB").save(path)
    np.testing.assert_array_equal(read_image(path), _colour_strip())


def test_tiff_16bit_gray(tmp_path: Path) -> None:
    gray = np.array([[0, 257 * 50], [257 * 254, 65535]], dtype=np.uint16)
    path = tmp_path / "gray16.tif"
    assert cv2.imwrite(str(path), gray)
    image = read_image(path)
    _assert_rgb8(image, (2, 2))
    expected = np.array([[0, 50], [254, 255]], np.uint8)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], expected)


def test_tiff_16bit_rgb(tmp_path: Path) -> None:
    rgb16 = _colour_strip().astype(np.uint16) * 257
    path = tmp_path / "rgb16.tiff"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_image(path), _colour_strip())


def test_path_as_string_and_upper_case_suffix(tmp_path: Path) -> None:
    path = tmp_path / "UPPER.PNG"
    Image.fromarray(_colour_strip(), "RGB").save(path, format="PNG")
    np.testing.assert_array_equal(read_image(str(path)), _colour_strip())


def test_to_rgb8_float_and_single_channel() -> None:
    np.testing.assert_array_equal(to_rgb8(np.full((2, 2), 1.0, np.float32)), np.full((2, 2, 3), 255, np.uint8))
    single = np.full((2, 3, 1), 9, np.uint8)
    np.testing.assert_array_equal(to_rgb8(single), np.full((2, 3, 3), 9, np.uint8))


# ---- errors --------------------------------------------------------------------------------

def _assert_read_error(path: Path) -> ImageReadError:
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, OSError)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _assert_read_error(tmp_path / "nope.png")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty" in str(_assert_read_error(path))


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    _assert_read_error(path)


def test_text_file_with_image_suffix(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    _assert_read_error(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = tmp_path / f"full{suffix}"
    assert cv2.imwrite(str(full), noise)
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    _assert_read_error(cut)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    _assert_read_error(folder)


# ---- listing -------------------------------------------------------------------------------

def _touch_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2, 2)).save(path, format="PNG")
    return path


def test_list_images_natural_order(tmp_path: Path) -> None:
    for name in ("10.png", "2.png", "1.png", "img_11.png", "img_9.png"):
        _touch_image(tmp_path / name)
    listing = list_images([tmp_path])
    assert [p.name for p in listing.images] == ["1.png", "2.png", "10.png", "img_9.png", "img_11.png"]
    assert listing.skipped == []


def test_list_images_skips_non_images(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a.png")
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / "data.csv").write_text("x")
    listing = list_images([tmp_path])
    assert [p.name for p in listing.images] == ["a.png"]
    assert sorted(p.name for p in listing.skipped) == ["data.csv", "readme.txt"]


def test_list_images_accepts_all_suffixes_case_insensitively(tmp_path: Path) -> None:
    names = ["a.png", "b.JPG", "c.jpeg", "d.bmp", "e.tif", "f.TIFF", "g.webp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images([tmp_path]).images] == names


def test_list_images_ignores_hidden_files_and_folders(tmp_path: Path) -> None:
    _touch_image(tmp_path / "visible.png")
    _touch_image(tmp_path / ".hidden.png")
    _touch_image(tmp_path / ".cache" / "thumb.png")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    listing = list_images([tmp_path])
    assert [p.name for p in listing.images] == ["visible.png"]
    assert listing.skipped == []


def test_list_images_root_inside_hidden_folder_is_listed(tmp_path: Path) -> None:
    root = tmp_path / ".config" / "images"
    _touch_image(root / "a.png")
    assert [p.name for p in list_images([root]).images] == ["a.png"]


def test_list_images_recursive_flag(tmp_path: Path) -> None:
    _touch_image(tmp_path / "top.png")
    _touch_image(tmp_path / "sub" / "deep.png")
    _touch_image(tmp_path / "sub" / "deeper" / "deepest.png")
    recursive = list_images([tmp_path], recursive=True)
    flat = list_images([tmp_path], recursive=False)
    assert sorted(p.name for p in recursive.images) == ["deep.png", "deepest.png", "top.png"]
    assert [p.name for p in flat.images] == ["top.png"]
    assert flat.skipped == []  # sub-folders are neither images nor skipped files


def test_list_images_recursive_is_natural_order_across_folders(tmp_path: Path) -> None:
    for name in ("lot10/1.png", "lot2/10.png", "lot2/9.png", "lot1/3.png"):
        _touch_image(tmp_path / name)
    listing = list_images([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in listing.images] == [
        "lot1/3.png", "lot2/9.png", "lot2/10.png", "lot10/1.png"]


def test_list_images_files_and_folders_mixed(tmp_path: Path) -> None:
    single = _touch_image(tmp_path / "single.png")
    note = tmp_path / "note.txt"
    note.write_text("x")
    folder = tmp_path / "folder"
    _touch_image(folder / "in_folder.png")
    listing = list_images([single, note, folder])
    assert listing.images == [single, folder / "in_folder.png"]
    assert listing.skipped == [note]


def test_list_images_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        list_images([tmp_path / "nope"])


def test_listed_images_read_back(tmp_path: Path) -> None:
    _touch_image(tmp_path / "x.png")
    [path] = list_images([tmp_path]).images
    _assert_rgb8(read_image(path), (2, 2))


# ---- nothing silently partial: multi-page files, float TIFF, folders that cannot be listed ----

def _real_cells(count: int) -> list[np.ndarray]:
    """Real ELPV solar-cell images (gray, 300x300), skipping without the data package."""
    pytest.importorskip("elpv_dataset")
    from inspector.datasets.elpv import load_cells

    paths = sorted((c.path for c in load_cells() if c.cell_type == "mono" and c.good), key=lambda p: p.name)
    return [read_image(p) for p in paths[:count]]


def test_multi_page_tiff_is_refused_with_its_page_count(tmp_path: Path) -> None:
    pages = [Image.fromarray(cell[:, :, 0]) for cell in _real_cells(3)]
    path = tmp_path / "lot.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    error = _assert_read_error(path)
    assert "multi-page TIFF (3 pages)" in str(error) and "split" in str(error)
    pages[0].save(tmp_path / "one.tif")  # the same kind of file with one page reads
    np.testing.assert_array_equal(read_image(tmp_path / "one.tif")[:, :, 0], np.asarray(pages[0]))


def test_animated_png_is_refused(tmp_path: Path) -> None:
    frames = [Image.fromarray(cell) for cell in _real_cells(2)]
    path = tmp_path / "anim.png"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert "multi-page animated PNG (2 pages)" in str(_assert_read_error(path))


def test_multi_page_tiff_gives_the_same_error_to_score_and_the_folder_source(tmp_path: Path, capsys,
                                                                            monkeypatch) -> None:
    import json

    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    from inspector.cli.main import main
    from inspector.sources.folder import FolderSource

    pages = [Image.fromarray(cell) for cell in _real_cells(2)]
    folder = tmp_path / "parts"
    folder.mkdir()
    pages[0].save(folder / "lot.tif", save_all=True, append_images=pages[1:])
    source = FolderSource(folder)
    source.open()
    source.read()
    failures = source.take_failures()
    assert len(failures) == 1 and "multi-page TIFF" in str(failures[0])
    model = _session_model_file(tmp_path)
    capsys.readouterr()
    assert main(["score", str(model), str(folder), "--format", "jsonl", "--quiet"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert "multi-page TIFF (2 pages)" in record["error"]


def _session_model_file(tmp_path: Path) -> Path:
    """A small Gaussian model on real cells (32 px), enough to score with."""
    from inspector.pipeline.model import InspectionModel

    cells = _real_cells(10)
    model = InspectionModel.fit([c[::4, ::4] for c in cells], detector="gaussian", image_size=32,
                                device="cpu", fast_map=False)
    path = tmp_path / "cells.safetensors"
    model.save(path)
    return path


def test_float32_gray_tiff_in_unit_range_is_scaled_without_an_opencv_error(tmp_path: Path, capfd) -> None:
    cell = _real_cells(1)[0][:, :, 0]
    path = tmp_path / "cell.tif"
    assert cv2.imwrite(str(path), cell.astype(np.float32) / 255.0)
    image = read_image(path)
    _assert_rgb8(image, cell.shape)
    np.testing.assert_array_equal(image[:, :, 1], cell)
    assert "error" not in capfd.readouterr().err.lower()


@pytest.mark.parametrize("scale", [1.0, 257.0])
def test_float_tiff_in_8_or_16_bit_range(tmp_path: Path, scale: float) -> None:
    cell = _real_cells(1)[0]
    path = tmp_path / "cell.tif"
    assert cv2.imwrite(str(path), cv2.cvtColor(cell, cv2.COLOR_RGB2BGR).astype(np.float32) * scale)
    np.testing.assert_array_equal(read_image(path), cell)


@pytest.mark.parametrize("values", ["negative", "nan"])
def test_float_tiff_out_of_range_is_refused_with_a_reason(tmp_path: Path, values: str) -> None:
    data = _real_cells(1)[0][:, :, 0].astype(np.float32) / 255.0
    data[0, 0] = -3.0 if values == "negative" else np.nan
    path = tmp_path / "cell.tif"
    assert cv2.imwrite(str(path), data)
    message = str(_assert_read_error(path))
    assert ("from -3 to" in message) if values == "negative" else ("NaN" in message)


def test_unreadable_sub_folder_is_reported_not_skipped_silently(tmp_path: Path, monkeypatch) -> None:
    import os

    _touch_image(tmp_path / "a.png")
    locked = tmp_path / "locked"
    _touch_image(locked / "hidden_from_us.png")
    real_scandir = os.scandir

    def scandir(path):  # what a folder without read permission does (tests may run as root)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    listing = list_images([tmp_path])
    assert [p.name for p in listing.images] == ["a.png"]
    assert listing.problems == [(locked, "folder cannot be read (Permission denied)")]
    with pytest.raises(PermissionError, match="folder cannot be read"):  # the folder asked for itself
        list_images([locked])


def test_unreadable_sub_folder_for_real(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads folders whatever their mode")
    locked = tmp_path / "locked"
    _touch_image(locked / "x.png")
    locked.chmod(0)
    try:
        assert [p for p, _ in list_images([tmp_path]).problems] == [locked]
    finally:
        locked.chmod(0o755)


def test_symlink_loop_ends_and_is_reported(tmp_path: Path) -> None:
    _touch_image(tmp_path / "lot" / "a.png")
    (tmp_path / "lot" / "again").symlink_to(tmp_path, target_is_directory=True)  # lot/again -> root
    (tmp_path / "self.png").symlink_to(tmp_path / "self.png")  # a link to itself
    listing = list_images([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in listing.images] == ["lot/a.png"]
    reasons = dict(listing.problems)
    assert "loop" in reasons[tmp_path / "lot" / "again"]
    assert "loop" in reasons[tmp_path / "self.png"]


def test_broken_symlink_is_listed_and_reads_as_broken(tmp_path: Path) -> None:
    _touch_image(tmp_path / "a.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "gone.png")
    listing = list_images([tmp_path])
    assert [p.name for p in listing.images] == ["a.png", "b.png"]
    assert "broken symbolic link" in str(_assert_read_error(tmp_path / "b.png"))


def test_symlinked_folder_is_listed_once(tmp_path: Path) -> None:
    _touch_image(tmp_path / "lot" / "a.png")
    (tmp_path / "alias").symlink_to(tmp_path / "lot", target_is_directory=True)
    listing = list_images([tmp_path])
    assert len(listing.images) == 1
    assert [reason for _, reason in listing.problems] == [f"link to a folder already listed ({tmp_path / 'alias'})"] \
        or [reason for _, reason in listing.problems] == [f"link to a folder already listed ({tmp_path / 'lot'})"]


def test_tiff_with_a_preview_page_reads_as_one_image(tmp_path: Path) -> None:
    from PIL import TiffImagePlugin

    cell = _real_cells(1)[0][:, :, 0]
    full, preview = Image.fromarray(cell), Image.fromarray(cell[::6, ::6])
    path = tmp_path / "with_preview.tif"
    with open(path, "w+b") as stream, TiffImagePlugin.AppendingTiffWriter(stream, True) as writer:
        full.save(writer, format="TIFF")
        writer.newFrame()
        reduced = TiffImagePlugin.ImageFileDirectory_v2()
        reduced[254] = 1  # NewSubfileType: reduced-resolution version of the image
        preview.save(writer, format="TIFF", tiffinfo=reduced)
        writer.newFrame()
    assert cv2.imcount(str(path)) == 2  # two pages for OpenCV, one image for Inspector
    np.testing.assert_array_equal(read_image(path)[:, :, 0], cell)
