"""The backbone registry is the one list: builders, weights lookup, CLI and GUI read it."""

from __future__ import annotations

import pytest
from efficientnet_pytorch import EfficientNet

from inspector.backbones.catalog import BACKBONE_SPECS, backbone_help, backbone_names, backbone_spec
from inspector.backbones.efficientnet import default_preprocessing
from inspector.backbones.weights import WeightsError, packaged_weights_path
from inspector.catalog import BACKBONES
from inspector.cli.main import build_parser


def test_b_models_native_sizes_match_efficientnet_pytorch():
    for spec in BACKBONE_SPECS.values():
        if spec.family == "b":
            assert spec.native_size == EfficientNet.get_image_size(f"efficientnet-{spec.name}")
            assert not spec.ships_weights


def test_every_backbone_that_ships_weights_finds_them_offline():
    shipped = [s for s in BACKBONE_SPECS.values() if s.ships_weights]
    assert [s.name for s in shipped] == ["lite0", "lite1", "lite2"]
    for spec in shipped:
        assert packaged_weights_path(spec.name).is_file()
    with pytest.raises(WeightsError, match="ships no weights"):
        packaged_weights_path("b0")


def test_lookup_preprocessing_and_the_cli_read_the_registry():
    assert backbone_spec("EfficientNet-Lite1".replace("Lite", "lite")).name == "lite1"
    with pytest.raises(KeyError, match="choose one of lite0, lite1"):
        backbone_spec("resnet50")
    with pytest.raises(WeightsError, match="unknown backbone"):
        default_preprocessing("resnet50")
    assert default_preprocessing("lite2").image_size == 260 and default_preprocessing("lite2").mean == (0.5,) * 3
    assert default_preprocessing("b3").mean == (0.485, 0.456, 0.406)
    assert BACKBONES == backbone_names()
    fit = build_parser()._subparsers._group_actions[0].choices["fit"]
    choices = next(a.choices for a in fit._actions if "--backbone" in a.option_strings)
    assert tuple(choices) == backbone_names()
    assert "lite0, lite1, lite2 ship ImageNet weights" in backbone_help()
