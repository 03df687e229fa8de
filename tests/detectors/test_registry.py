"""The detector registry: found by scanning the package, and the one source of every list of detectors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import torch

import inspector.detectors
from inspector.catalog import DEFAULT_DETECTOR
from inspector.cli.main import build_parser, main
from inspector.detectors import base
from inspector.detectors.base import (
    Detector,
    FitResult,
    detector_catalog,
    detector_class,
    detector_kinds,
    register,
)


def _choices(parser, command: str, option: str = "--detector") -> tuple[str, ...]:
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


class TinyDetector(Detector):
    """Mean brightness: a test detector registered by the test alone."""

    kind = "tiny-test"

    def __init__(self, fast_map: bool = True, device=None) -> None:
        self.device = torch.device("cpu")
        self.fast_map = fast_map

    def fit(self, images, progress, folds=5) -> FitResult:
        return FitResult(held_out_scores=self.score(images))

    def score(self, images) -> np.ndarray:
        return np.array([float(np.mean(image)) for image in images])

    def config(self) -> dict:
        return {}

    def tensors(self) -> dict:
        return {}

    @classmethod
    def from_state(cls, config, tensors, device):
        return cls()


@pytest.fixture
def tiny(monkeypatch):
    """``TinyDetector`` registered in a copy of the registry that the test leaves behind."""
    detector_kinds()
    monkeypatch.setattr(base, "_CLASSES", dict(base._CLASSES))
    return register(TinyDetector)


def _registered_in_package() -> set[str]:
    """Kinds of the registered classes defined in the modules of ``inspector.detectors``."""
    kinds = set()
    for info in pkgutil.iter_modules(inspector.detectors.__path__, prefix="inspector.detectors."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Detector) and obj.__module__ == module.__name__ and obj.kind \
                    and base._CLASSES.get(obj.kind) is obj:
                kinds.add(obj.kind)
    return kinds


def test_every_detector_module_is_discovered_without_a_list():
    kinds = detector_kinds()
    in_package = {kind for kind in kinds if detector_class(kind).__module__.startswith("inspector.detectors.")}
    assert in_package == _registered_in_package()   # other kinds: test detectors registered by tests
    assert {"fusion", "gaussian", "ae-l2", "ae-ssim", "vae", "anogan"} <= set(kinds)
    assert kinds[0] == DEFAULT_DETECTOR
    assert len(set(kinds)) == len(kinds)


def test_cli_choices_and_catalog_are_the_registry():
    parser = build_parser()
    kinds = detector_kinds()
    assert _choices(parser, "fit") == kinds
    assert tuple(_choices(parser, "benchmark")) == kinds
    catalog = detector_catalog()
    assert tuple(entry.kind for entry in catalog) == kinds
    for entry in catalog:
        cls = detector_class(entry.kind)
        assert entry.description and entry.title
        assert entry.uses_backbone == cls.uses_backbone
    gaussian = next(entry for entry in catalog if entry.kind == "gaussian")
    assert gaussian.description == detector_class("gaussian").description


def test_a_detector_registered_anywhere_shows_up_everywhere(tiny):
    assert "tiny-test" in detector_kinds()
    assert detector_class("tiny-test") is TinyDetector
    entry = next(entry for entry in detector_catalog() if entry.kind == "tiny-test")
    assert entry.title == "tiny-test"
    assert entry.description == "Mean brightness: a test detector registered by the test alone"
    assert entry.options == ("fast_map", "device")
    parser = build_parser()
    assert "tiny-test" in _choices(parser, "fit")
    assert "tiny-test" in _choices(parser, "benchmark")
    help_text = next(a for a in parser._actions if a.dest == "command").choices["fit"].format_help()
    assert "tiny-test" in help_text


def test_registry_refuses_a_second_class_for_a_kind(tiny):
    class Impostor(TinyDetector):
        kind = "tiny-test"

    with pytest.raises(ValueError, match="taken"):
        register(Impostor)
    with pytest.raises(ValueError, match="unknown detector"):
        detector_class("no-such-detector")


def test_capabilities_have_defaults_on_the_base_class(tiny):
    assert TinyDetector.has_fast_map_option()
    assert detector_class("gaussian").has_fast_map_option()
    assert not detector_class("fusion").has_fast_map_option()   # fusion always fits its map
    assert not detector_class("ae-l2").has_fast_map_option()
    detector = TinyDetector()
    assert detector.held_out_twin() == (detector, None)
    assert not detector.has_maps and not detector.supports_gradient and not TinyDetector.uses_backbone


def test_fit_refuses_no_fast_map_for_a_detector_without_the_switch(tmp_path, capsys):
    code = main(["fit", str(tmp_path), "-o", str(tmp_path / "m.safetensors"), "--detector", "fusion",
                 "--no-fast-map", "--quiet"])
    assert code == 2
    assert "--no-fast-map" in capsys.readouterr().err


def test_segmenter_choices_and_a_models_segmenters_come_from_one_table(tiny):
    from inspector.pipeline.maps import SEGMENTERS, supported_segmenters

    parser = build_parser()
    assert _choices(parser, "score", "--segmenter") == tuple(SEGMENTERS)
    assert _choices(parser, "benchmark", "--segmenter") == tuple(SEGMENTERS)
    assert supported_segmenters(TinyDetector()) == ()      # no map, no differentiable score

    class Mapped(TinyDetector):
        has_maps = True

    assert supported_segmenters(Mapped()) == ("fast",)
