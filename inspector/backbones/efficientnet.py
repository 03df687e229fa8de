"""EfficientNet backbones (efficientnet-pytorch) that return features at every stage.

Lite0-2 follow TensorFlow's EfficientNet-Lite: no squeeze-excitation, ReLU6 in
place of swish, stem (32) and head (1280) channels kept fixed, and the first and
last stages not repeated more with depth. B0-B7 are the standard models.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from efficientnet_pytorch import EfficientNet
from efficientnet_pytorch.utils import BlockDecoder, GlobalParams, round_filters
from torch import nn

from inspector.backbones.preprocessing import Preprocessing
from inspector.backbones.catalog import BackboneSpec, backbone_names, backbone_spec
from inspector.backbones.weights import (
    WeightsError,
    file_sha256,
    load_state_dict,
    packaged_weights_path,
)

_STAGES = [
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
]

BACKBONE_NAMES = backbone_names()


@dataclass(frozen=True)
class BackboneInfo:
    """What identifies a backbone: its name and the hash of its weights."""

    name: str
    weights_sha256: str
    level_names: tuple[str, ...]
    level_channels: tuple[int, ...]
    level_strides: tuple[int, ...]
    native_size: int


class FeatureBackbone(nn.Module):
    """An EfficientNet in eval mode that returns the feature map of every stage.

    Levels: ``stem`` (stride 2), ``stage1``..``stage7`` and ``head`` (1280 channels),
    each after its activation.
    """

    def __init__(self, net: EfficientNet, info: BackboneInfo, stage_ends: list[int]) -> None:
        super().__init__()
        self.net = net
        self.info = info
        self._stage_ends = stage_ends
        self.eval()
        # What forward runs: the same network with its BatchNorms folded into the convolutions,
        # in channels-last layout (README, "Speed"). ``net`` keeps the weights as loaded.
        self.runner = fold_batch_norms(net).to(memory_format=torch.channels_last)
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Feature maps of levels ``0..upto`` (all levels when ``upto`` is None), ``(N, C, H, W)`` in
        channels-last memory layout (converting them back would cost more than the folding saves)."""
        return _stage_features(self.runner, self._stage_ends, self.info.level_names,
                               x.contiguous(memory_format=torch.channels_last), upto)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (used to verify that the weights are the real ones)."""
        head = self.forward(x)[-1]
        return self.net._fc(torch.flatten(self.net._avg_pooling(head), 1))


def _stage_features(net: EfficientNet, stage_ends: list[int], level_names: Sequence[str], x: torch.Tensor,
                    upto: int | None) -> list[torch.Tensor]:
    last = len(level_names) - 1 if upto is None else upto
    x = net._swish(net._bn0(net._conv_stem(x)))
    features = [x]
    if last == 0:
        return features
    ends = set(stage_ends)
    for index, block in enumerate(net._blocks):
        x = block(x)
        if index in ends:
            features.append(x)
            if len(features) > last:
                return features
    features.append(net._swish(net._bn1(net._conv_head(x))))
    return features


def _folded_pairs(net: EfficientNet) -> list[tuple[nn.Module, str, str]]:
    """(owner, convolution, its BatchNorm) attribute names of every conv-BN pair of an EfficientNet."""
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs.append((block, "_depthwise_conv", "_bn1"))
        pairs.append((block, "_project_conv", "_bn2"))  # squeeze-excitation convolutions have no BatchNorm
    return pairs


def fold_batch_norms(net: EfficientNet) -> EfficientNet:
    """An eval-only copy of ``net`` in which every BatchNorm is folded into the convolution before it.

    ``w' = w * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta``: the same function
    (to float rounding) with one operation fewer per convolution.
    """
    folded = copy.deepcopy(net).eval()
    with torch.no_grad():
        for owner, conv_name, norm_name in _folded_pairs(folded):
            conv, norm = getattr(owner, conv_name), getattr(owner, norm_name)
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            bias = norm.bias - norm.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
            conv.bias = nn.Parameter(bias, requires_grad=False)
            setattr(owner, norm_name, nn.Identity())
            _pad_inside(conv)
    return folded


def _pad_inside(conv: nn.Module) -> None:
    """Let a TF-'SAME' convolution pad by itself when its static zero padding is symmetric (stride 1).

    The same zeros, without the separate padding pass over the input; asymmetric padding
    (stride 2 on even sizes) is kept as it is.
    """
    padding = getattr(conv, "static_padding", None)
    if not isinstance(padding, nn.ZeroPad2d):
        return
    left, right, top, bottom = padding.padding
    if left == right and top == bottom and tuple(conv.padding) == (0, 0):
        conv.padding = (top, left)
        conv.static_padding = nn.Identity()


def _lite_network(spec: BackboneSpec) -> tuple[EfficientNet, list[int]]:
    width, depth, size = spec.width, spec.depth, spec.native_size
    params = GlobalParams(
        width_coefficient=width, depth_coefficient=None, image_size=size, dropout_rate=0.2,
        num_classes=1000, batch_norm_momentum=0.99, batch_norm_epsilon=1e-3,
        drop_connect_rate=0.2, depth_divisor=8, min_depth=None, include_top=True,
    )
    blocks = []
    for index, stage in enumerate(BlockDecoder.decode(_STAGES)):
        fixed_depth = index in (0, len(_STAGES) - 1)
        blocks.append(stage._replace(
            se_ratio=None,
            num_repeat=stage.num_repeat if fixed_depth else int(math.ceil(depth * stage.num_repeat)),
            input_filters=32 if index == 0 else stage.input_filters,
        ))
    net = EfficientNet(blocks, params)
    # efficientnet-pytorch scales stem and head with width; Lite keeps them at 32 and 1280.
    if net._conv_head.out_channels != 1280 or net._conv_stem.out_channels != 32:
        _fix_lite_stem_and_head(net, params)
    _use_relu6(net)
    return net, _stage_ends([b.num_repeat for b in blocks])


def _fix_lite_stem_and_head(net: EfficientNet, params: GlobalParams) -> None:
    from efficientnet_pytorch.utils import get_same_padding_conv2d

    head_in = net._conv_head.in_channels
    conv = get_same_padding_conv2d(image_size=None)
    net._conv_head = conv(head_in, 1280, kernel_size=1, bias=False)
    net._bn1 = nn.BatchNorm2d(1280, momentum=1 - params.batch_norm_momentum, eps=params.batch_norm_epsilon)
    net._fc = nn.Linear(1280, params.num_classes)


def _use_relu6(net: EfficientNet) -> None:
    net._swish = nn.ReLU6()
    for block in net._blocks:
        block._swish = nn.ReLU6()


def _stage_ends(repeats: list[int]) -> list[int]:
    ends, total = [], 0
    for count in repeats:
        total += count
        ends.append(total - 1)
    return ends


def _b_network(spec: BackboneSpec) -> tuple[EfficientNet, list[int]]:
    net = EfficientNet.from_name(f"efficientnet-{spec.name}")
    net.set_swish(memory_efficient=False)
    params = net._global_params
    repeats = [math.ceil(params.depth_coefficient * s.num_repeat) for s in BlockDecoder.decode(_STAGES)]
    return net, _stage_ends(repeats)


def _probe_levels(net: EfficientNet, stage_ends: list[int], size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    # Eval mode first: a forward pass in training mode would move the BatchNorm running statistics.
    net.eval()
    with torch.no_grad():
        maps = _stage_features(net, stage_ends, tuple(str(i) for i in range(9)), torch.zeros(1, 3, 64, 64), None)
    return tuple(m.shape[1] for m in maps), tuple(64 // m.shape[-1] for m in maps)


def build_backbone(name: str = "lite0", weights: str | Path | None = None,
                   device: torch.device | str = "cpu") -> FeatureBackbone:
    """Build an EfficientNet backbone with pretrained ImageNet weights.

    Args:
        name: ``lite0``, ``lite1``, ``lite2`` or ``b0``..``b7``.
        weights: A weights file; required for B0-B7, optional override for Lite.
        device: Where the network runs.

    Raises:
        WeightsError: unknown name, missing or unreadable weights, or weights that
            do not fit the architecture.
    """
    try:
        spec = backbone_spec(name)
    except KeyError as exc:
        raise WeightsError(exc.args[0]) from None
    name, native = spec.name, spec.native_size
    if spec.family == "lite":
        net, stage_ends = _lite_network(spec)
        path = Path(weights) if weights else packaged_weights_path(name)
    else:
        if not weights:
            raise WeightsError(
                f"backbone {name!r} needs a weights file: pass --weights PATH to an ImageNet "
                f"state dict for efficientnet-{name} (efficientnet-pytorch key naming); "
                "Inspector never downloads weights"
            )
        net, stage_ends = _b_network(spec)
        path = Path(weights)
    state = load_state_dict(path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise WeightsError(f"weights file {path} does not fit backbone {name!r}: {' '.join(first)}") from exc
    channels, strides = _probe_levels(net, stage_ends, native)
    info = BackboneInfo(
        name=name,
        weights_sha256=file_sha256(path),
        level_names=("stem", *(f"stage{i}" for i in range(1, 8)), "head"),
        level_channels=channels,
        level_strides=strides,
        native_size=native,
    )
    return FeatureBackbone(net, info, stage_ends).to(device)


def default_preprocessing(name: str, image_size: int | None = None) -> Preprocessing:
    """The input convention the backbone's weights were trained with."""
    try:
        spec = backbone_spec(name)
    except KeyError as exc:
        raise WeightsError(exc.args[0]) from None
    size = image_size or (spec.native_size if spec.family == "lite" else 224)
    return Preprocessing(image_size=size, mean=spec.mean, std=spec.std)
