"""The source registry: each source module registers its kinds; the spec parser and the help follow it."""

from __future__ import annotations

import pytest

from inspector.cli.main import build_parser
from inspector.sources import registry
from inspector.sources.folder import FolderSource
from inspector.sources.registry import SourceKind, register_source, source_kind, source_kinds
from inspector.sources.spec import parse_source_spec


def _gui_source_help() -> str:
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["gui"]
    return next(a for a in sub._actions if "--source" in a.option_strings).help


@pytest.fixture
def scratch_registry(monkeypatch):
    source_kinds()
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))


def test_builtin_kinds_are_found_in_their_modules():
    names = [kind.name for kind in source_kinds()]
    assert names == ["camera", "video", "folder", "hotfolder", "stream"]
    assert source_kind("hotfolder").build.__module__ == "inspector.sources.hotfolder"
    assert source_kind("camera").build.__module__ == "inspector.sources.camera"


def test_cli_help_lists_every_kind():
    text = _gui_source_help()
    for kind in source_kinds():
        assert kind.example in text


def test_a_kind_registered_anywhere_is_parsed_and_listed(scratch_registry, tmp_path):
    seen = []

    def build(value, spec, options):
        seen.append((value, spec, options))
        return FolderSource(str(tmp_path))

    register_source(SourceKind("lot", "Lot", "lot number", "lot:NUMBER", "lot number", None, build, order=5))
    source = parse_source_spec("lot:42", recursive=True)
    assert isinstance(source, FolderSource)
    assert seen == [("42", "lot:42", {"recursive": True})]
    assert source_kinds()[0].name == "lot"
    assert "lot:NUMBER" in _gui_source_help()
    with pytest.raises(ValueError, match="missing its lot number"):
        parse_source_spec("lot:")
    with pytest.raises(ValueError, match="already registered"):
        register_source(SourceKind("lot", "Lot", "x", "lot:X", "", None, lambda v, s, o: None))


def test_unknown_kind_names_the_registered_ones():
    with pytest.raises(ValueError, match="expected one of: camera, video, folder, hotfolder, stream"):
        parse_source_spec("webcam:0")
