"""Pretrained EfficientNet backbones: real ImageNet weights, clear errors, levels, preprocessing."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspector.backbones.efficientnet import (
    BACKBONE_NAMES,
    _stage_features,
    build_backbone,
    default_preprocessing,
)
from inspector.backbones.weights import load_state_dict
from inspector.backbones.preprocessing import Preprocessing
from inspector.backbones.weights import WeightsError, file_sha256, packaged_weights_path
from inspector.core.imageio import read_image, to_rgb8

DATA = Path(__file__).resolve().parents[1] / "data"
TEXTURES = Path(__file__).resolve().parents[2] / "resources" / "textures"
CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
LITE_STRIDES = (2, 2, 4, 8, 16, 16, 32, 32, 32)
LITE0_CHANNELS = (32, 16, 24, 40, 80, 112, 192, 320, 1280)

pytestmark = pytest.mark.usefixtures("single_threaded")


@pytest.fixture(scope="module")
def cat() -> np.ndarray:
    path = DATA / "chelsea.png"
    if not path.is_file():  # restore the documented test image from scikit-image
        from skimage import data

        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    return read_image(path)


_BACKBONES: dict[str, torch.nn.Module] = {}


def _backbone(name: str):
    """Each Lite backbone is built once per test session module."""
    if name not in _BACKBONES:
        _BACKBONES[name] = build_backbone(name, device="cpu")
    return _BACKBONES[name]


@pytest.fixture(scope="module", autouse=True)
def _release_backbones():
    yield
    _BACKBONES.clear()


def _top1(name: str, images: list[np.ndarray]) -> list[int]:
    net = _backbone(name)
    with torch.inference_mode():
        logits = net.classify(default_preprocessing(name).to_tensor(images))
    assert logits.shape == (len(images), 1000)
    return logits.argmax(dim=1).tolist()


# ---- the weights are the real ImageNet ones ------------------------------------------------

@pytest.mark.parametrize("name", ["lite0", "lite1", "lite2"])
def test_cat_photo_is_classified_as_a_cat(name: str, cat: np.ndarray) -> None:
    [top1] = _top1(name, [cat])
    assert top1 in CAT_CLASSES, f"{name} classified the cat photo as ImageNet class {top1}"


def test_textures_are_not_cats() -> None:
    # Control: the cat test is not passing because every input comes out as a cat.
    textures = [read_image(TEXTURES / f"{name}.png") for name in ("brick", "grass", "gravel")]
    predictions = _top1("lite0", textures)
    assert not any(p in CAT_CLASSES for p in predictions), predictions


def test_gray_cat_photo_arrives_as_three_channels_and_works(cat: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "gray_cat.png"
    cv2.imwrite(str(path), cv2.cvtColor(cat, cv2.COLOR_RGB2GRAY))
    gray = read_image(path)
    assert gray.shape == cat.shape and gray.dtype == np.uint8
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    tensor = default_preprocessing("lite0").to_tensor([gray])
    assert tensor.shape == (1, 3, 224, 224)
    assert torch.equal(tensor[:, 0], tensor[:, 1]) and torch.equal(tensor[:, 1], tensor[:, 2])
    [top1] = _top1("lite0", [gray])
    assert top1 in CAT_CLASSES


def test_backbone_is_frozen_and_in_eval_mode() -> None:
    net = _backbone("lite0")
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())


def test_info_identifies_the_packaged_weights() -> None:
    info = _backbone("lite0").info
    path = packaged_weights_path("lite0")
    assert info.name == "lite0"
    assert info.weights_sha256 == file_sha256(path)
    assert len(info.weights_sha256) == 64 and int(info.weights_sha256, 16) >= 0
    assert info.native_size == 224
    assert _backbone("lite1").info.weights_sha256 != info.weights_sha256


def test_explicit_lite_weights_file_is_used(tmp_path: Path) -> None:
    copy = tmp_path / "my-lite0.pth"
    shutil.copyfile(packaged_weights_path("lite0"), copy)
    net = build_backbone("efficientnet-lite0", weights=copy)
    assert net.info.name == "lite0"
    assert net.info.weights_sha256 == _backbone("lite0").info.weights_sha256
    x = default_preprocessing("lite0", 64).to_tensor([np.full((64, 64, 3), 90, np.uint8)])
    with torch.inference_mode():
        assert torch.allclose(net.classify(x), _backbone("lite0").classify(x))


# ---- errors --------------------------------------------------------------------------------

def test_b0_without_weights_asks_for_weights_option() -> None:
    with pytest.raises(WeightsError, match="--weights"):
        build_backbone("b0")


@pytest.mark.parametrize("name", ["b3", "efficientnet-b7", "B0"])
def test_every_b_model_needs_weights(name: str) -> None:
    with pytest.raises(WeightsError, match="--weights"):
        build_backbone(name)


def test_b0_with_lite_weights_does_not_fit() -> None:
    path = packaged_weights_path("lite0")
    with pytest.raises(WeightsError, match="does not fit") as info:
        build_backbone("b0", weights=path)
    assert str(path) in str(info.value)


def test_lite1_with_lite0_weights_does_not_fit() -> None:
    with pytest.raises(WeightsError, match="does not fit"):
        build_backbone("lite1", weights=packaged_weights_path("lite0"))


def test_truncated_weights_file(tmp_path: Path) -> None:
    data = packaged_weights_path("lite0").read_bytes()
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match="truncated.pth"):
        build_backbone("lite0", weights=cut)


def test_garbage_weights_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a torch file" * 100)
    with pytest.raises(WeightsError):
        build_backbone("b0", weights=junk)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        build_backbone("b0", weights=tmp_path / "absent.pth")


def test_file_without_tensors_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "numbers.pth"
    torch.save({"a": 1.5, "b": [1, 2]}, path)
    with pytest.raises(WeightsError, match="state dict of tensors"):
        build_backbone("b0", weights=path)


class _Payload:
    """Unpickling this would create a marker file: weights must never be unpickled as code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_weights_with_code_are_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1), "payload": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="could not be read"):
        build_backbone("b0", weights=path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["lite3", "resnet50", "", "b8"])
def test_unknown_backbone(name: str) -> None:
    with pytest.raises(WeightsError, match="unknown backbone"):
        build_backbone(name)


def test_backbone_names() -> None:
    assert BACKBONE_NAMES == ("lite0", "lite1", "lite2", *(f"b{i}" for i in range(8)))


# ---- levels --------------------------------------------------------------------------------

def test_lite0_levels() -> None:
    info = _backbone("lite0").info
    assert info.level_names == ("stem", *(f"stage{i}" for i in range(1, 8)), "head")
    assert info.level_channels == LITE0_CHANNELS
    assert info.level_strides == LITE_STRIDES


@pytest.mark.parametrize("name", ["lite1", "lite2"])
def test_other_lite_levels(name: str) -> None:
    info = _backbone(name).info
    assert len(info.level_channels) == 9
    assert info.level_strides == LITE_STRIDES
    assert info.level_channels[0] == 32 and info.level_channels[-1] == 1280  # Lite keeps stem and head


def test_forward_returns_every_level_at_its_stride() -> None:
    net = _backbone("lite0")
    x = torch.zeros(2, 3, 128, 128)
    with torch.inference_mode():
        maps = net(x)
        partial = net(x, upto=3)
        stem_only = net(x, upto=0)
    assert len(maps) == 9
    for level, (tensor, channels, stride) in enumerate(zip(maps, LITE0_CHANNELS, LITE_STRIDES)):
        assert tuple(tensor.shape) == (2, channels, 128 // stride, 128 // stride), level
    assert len(partial) == 4 and len(stem_only) == 1
    for short, full in zip(partial, maps):
        assert torch.equal(short, full)


@pytest.mark.parametrize("name", ["lite0", "lite2"])
def test_folded_network_computes_the_loaded_networks_features(name: str, cat: np.ndarray) -> None:
    """forward runs a copy with the BatchNorms folded into the convolutions; the loaded network is kept as is."""
    net = _backbone(name)
    state = load_state_dict(packaged_weights_path(name))
    assert all(torch.equal(value, state[key]) for key, value in net.net.state_dict().items())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.runner.modules())
    x = default_preprocessing(name).to_tensor([cat, to_rgb8(cat[::-1])], torch.device("cpu"))
    with torch.inference_mode():
        folded = net(x)
        unfolded = _stage_features(net.net, net._stage_ends, net.info.level_names, x, None)
    for level, (ours, reference) in enumerate(zip(folded, unfolded)):
        error = float((ours - reference).abs().max() / reference.abs().max())
        assert error < 1e-4, f"level {level}: relative error {error:.2e}"


# ---- preprocessing -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lite0", "lite1", "lite2"])
def test_lite_preprocessing_maps_to_minus_one_one(name: str) -> None:
    prep = default_preprocessing(name, image_size=16)
    black, white = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 255, np.uint8)
    tensor = prep.to_tensor([black, white])
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (2, 3, 16, 16)
    assert torch.allclose(tensor[0], torch.full_like(tensor[0], -1.0))
    assert torch.allclose(tensor[1], torch.full_like(tensor[1], 1.0))


def test_lite_native_sizes() -> None:
    assert [default_preprocessing(n).image_size for n in ("lite0", "lite1", "lite2")] == [224, 240, 260]
    assert default_preprocessing("lite2", 128).image_size == 128


def test_b_preprocessing_uses_imagenet_statistics() -> None:
    prep = default_preprocessing("b0", image_size=8)
    value = np.zeros((8, 8, 3), np.uint8)
    value[...] = (124, 116, 104)  # about the ImageNet mean in RGB
    tensor = prep.to_tensor([value])
    assert tensor.abs().max() < 0.02


def test_preprocessing_keeps_rgb_channel_order() -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    tensor = default_preprocessing("lite0", 8).to_tensor([red])
    assert torch.allclose(tensor[0, 0], torch.ones(8, 8))
    assert torch.allclose(tensor[0, 1:], -torch.ones(2, 8, 8))


def test_preprocessing_stretches_whole_frame_without_cropping() -> None:
    # A wide frame with a bright right edge: resizing (not cropping) keeps the edge.
    frame = np.zeros((60, 200, 3), np.uint8)
    frame[:, -20:] = 255
    prep = default_preprocessing("lite0", 32)
    resized = prep.resize_image(frame)
    assert resized.shape == (32, 32, 3)
    assert resized[:, -1].min() == 255 and resized[:, 0].max() == 0
    assert prep.resize_image(np.zeros((32, 32, 3), np.uint8)).shape == (32, 32, 3)


def test_preprocessing_dict_round_trip() -> None:
    prep = Preprocessing(image_size=96, mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert Preprocessing.from_dict(prep.to_dict()) == prep
    assert Preprocessing.from_dict(default_preprocessing("b0").to_dict()) == default_preprocessing("b0")


def test_to_rgb8_output_feeds_the_network() -> None:
    gray16 = np.full((20, 30), 65535, np.uint16)
    tensor = default_preprocessing("lite0", 16).to_tensor([to_rgb8(gray16)])
    assert torch.allclose(tensor, torch.ones(1, 3, 16, 16))
