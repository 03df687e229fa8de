"""Inspection and ignore regions on real solar cells: a defect in an ignored region never makes a frame NG."""

from __future__ import annotations

import numpy as np
import pytest

from inspector.core.imageio import read_image
from inspector.core.records import Frame
from inspector.detectors.regions import RegionMask, RegionMaskError, mask_from_image
from inspector.pipeline.model import InspectionModel
from tests.conftest import limited_threads

CAT = "tests/data/chelsea.png"
SIZE = 128
IGNORED = (slice(0, 120), slice(0, 120))  # a "label" at the top left of the 300x300 cell
INSIDE_IGNORED = (20, 20)
INSIDE_INSPECTED = (200, 200)


def _paste(image: np.ndarray, patch: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    out = image.copy()
    y, x = at
    out[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
    return out


@pytest.fixture(scope="module")
def cells(elpv_mono):
    rng = np.random.default_rng(0)
    good = [read_image(p) for p in rng.permutation(elpv_mono.good)[:34]]
    mask = np.full(good[0].shape[:2], 255, np.uint8)
    mask[IGNORED] = 0
    # A real foreign object: a piece of a photograph (the cat's fur and eye), 50x50 pixels.
    patch = read_image(CAT)[100:150, 200:250]
    with limited_threads(1):
        plain = InspectionModel.fit(good[:24], image_size=SIZE, folds=5, device="cpu")
        masked = InspectionModel.fit(good[:24], image_size=SIZE, folds=5, device="cpu", mask=mask,
                                     reference_dir="/refs")
    return plain, masked, good[24:], patch, mask


def test_defect_in_ignored_region_is_not_ng_but_in_inspected_region_is(cells):
    plain, masked, test_good, patch, _ = cells
    clean = [g for g in test_good if masked.score_images([g])[0] < masked.threshold][:5]
    assert len(clean) >= 3
    hidden = [_paste(g, patch, INSIDE_IGNORED) for g in clean]
    seen = [_paste(g, patch, INSIDE_INSPECTED) for g in clean]
    # Without the mask the same paste at the same place is a clear reject: the place is not blind by itself.
    assert (plain.score_images(hidden) > plain.threshold).all()
    frames = [Frame(image=im, source="test", frame_id=i, path=None, timestamp=0.0) for i, im in enumerate(hidden + seen)]
    results = masked.inspect(frames)
    assert not any(r.anomalous for r in results[:len(hidden)])
    assert all(r.anomalous for r in results[len(hidden):])
    # Nothing of the ignored region reaches the model: the score is the clean image's.
    np.testing.assert_allclose(masked.score_images(hidden), masked.score_images(clean), rtol=1e-4)
    # Even an object filling the whole label area (what masking only the patch grids lets through,
    # by the backbone's receptive field and the pooled global evidence: README, regions).
    import cv2

    big = cv2.resize(read_image(CAT)[50:250, 150:350], (110, 110))
    filled = [_paste(g, big, (5, 5)) for g in clean]
    assert (plain.score_images(filled) > plain.threshold).all()
    assert (masked.score_images(filled) < masked.threshold).all()


def test_fast_map_is_zero_outside_the_inspected_region(cells):
    _, masked, test_good, patch, mask = cells
    image = _paste(_paste(test_good[0], patch, INSIDE_IGNORED), patch, INSIDE_INSPECTED)
    heatmap = masked.heatmaps([image])[0]
    assert heatmap.values.shape == image.shape[:2]
    assert np.all(heatmap.values[mask == 0] == 0)
    y, x = INSIDE_INSPECTED
    assert heatmap.values[y:y + 50, x:x + 50].max() > 1.0  # the visible defect is drawn
    assert all(not (r.y + r.height <= 120 and r.x + r.width <= 120) for r in heatmap.regions)


def test_mask_is_stored_in_the_model_file_and_applied_after_loading(cells, tmp_path):
    _, masked, test_good, patch, _ = cells
    path = tmp_path / "masked.safetensors"
    model_hash = masked.save(path)
    loaded = InspectionModel.load(path, device="cpu")
    assert loaded.model_hash == model_hash
    assert loaded.regions is not None
    np.testing.assert_array_equal(loaded.regions.inspected, masked.regions.inspected)
    assert loaded.info["reference_dir"] == "/refs"
    hidden = _paste(test_good[0], patch, INSIDE_IGNORED)
    np.testing.assert_allclose(loaded.score_images([hidden]), masked.score_images([hidden]), rtol=1e-5)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:  # a tensor in the file, no pickle
        assert "regions.inspected" in handle.keys()


def test_mask_picture_rules():
    picture = np.zeros((60, 80), np.uint8)
    with pytest.raises(RegionMaskError):
        mask_from_image(picture, 32)
    picture[:, 40:] = 255
    inspected = mask_from_image(picture, 32)
    assert inspected.shape == (32, 32) and inspected[:, 20:].all() and not inspected[:, :16].any()
    regions = RegionMask.fitted(inspected, [np.full((60, 80, 3), 7, np.uint8)], lambda im: np.full((32, 32, 3), 7, np.uint8))
    assert regions.ignored_fraction == pytest.approx(0.5)


def test_saved_overlay_dims_and_hatches_the_ignored_area_only(cells):
    from inspector.segmentation.overlay import ignored_layer, render_overlay

    _, masked, test_good, patch, _ = cells
    image = _paste(test_good[0], patch, INSIDE_INSPECTED)
    heatmap = masked.heatmaps([image])[0]
    mask = masked.regions.frame_mask(image.shape)  # the model's mask, back in the frame's geometry
    assert abs(int(mask[:120, :120].sum()) - 0) < 120 * 4  # about the drawn label
    plain = render_overlay(image, heatmap)
    marked = render_overlay(image, heatmap, inspected=masked.regions.inspected)
    assert (marked[mask > 0] == plain[mask > 0]).all()  # the inspected area is drawn as before
    ignored = marked[mask == 0].astype(int)
    assert ignored.mean() < plain[mask == 0].astype(int).mean() * 0.8  # dimmed ...
    layer = ignored_layer(masked.regions.inspected, image.shape)
    assert (layer[mask > 0, 3] == 0).all() and (layer[mask == 0, 3] > 0).all()
    hatch = layer[..., 3] == 230
    assert hatch[mask == 0].mean() > 0.05 and not hatch[mask > 0].any()  # ... and hatched
