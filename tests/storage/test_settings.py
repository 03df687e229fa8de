"""Settings: round trip, forgiving load, atomic save."""

from __future__ import annotations

import json

from inspector.storage.settings import (
    SETTINGS_VERSION,
    Settings,
    default_settings_path,
    load_settings,
    save_settings,
)


def test_missing_file_gives_defaults(tmp_path):
    settings, warnings = load_settings(tmp_path / "nope.json")
    assert settings == Settings() and warnings == []


def test_round_trip(tmp_path):
    path = tmp_path / "cfg" / "settings.json"
    settings = Settings(
        last_source="camera:0",
        last_model="/models/lot7.inspector",
        threshold_override=3.25,
        overlay_opacity=0.7,
        segmentation_mode="fast+gradient",
        window_geometry="AdnQywADAAA=",
        results_db="/data/results.sqlite3",
    )
    settings.add_recent_model("/models/a")
    settings.add_recent_model("/models/b")
    settings.add_recent_model("/models/a")
    assert settings.recent_models == ["/models/a", "/models/b"]
    assert save_settings(settings, path) == path
    loaded, warnings = load_settings(path)
    assert warnings == [] and loaded == settings
    assert json.loads(path.read_text())["version"] == SETTINGS_VERSION
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]  # no temp file left


def test_broken_json_gives_defaults_and_a_warning(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"overlay_opacity": 0.3,')
    settings, warnings = load_settings(path)
    assert settings == Settings()
    assert len(warnings) == 1 and "not valid JSON" in warnings[0]
    assert (tmp_path / "settings.json.broken").read_text() == '{"overlay_opacity": 0.3,'
    path.write_text("[1, 2]")
    assert load_settings(path)[0] == Settings()
    path.write_bytes(b"\xff\xfe\x00garbage")
    settings, warnings = load_settings(path)
    assert settings == Settings() and len(warnings) == 1


def test_unknown_and_invalid_values_are_dropped_with_warnings(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "last_source": "folder:/lot7",
                "colour": "blue",
                "overlay_opacity": 4,
                "threshold_override": -1,
                "segmentation_mode": "slow",
                "window_geometry": "not base64!",
                "recent_models": ["/a", 3],
                "results_db": 12,
            }
        )
    )
    settings, warnings = load_settings(path)
    defaults = Settings()
    assert settings.last_source == "folder:/lot7"
    assert settings.overlay_opacity == defaults.overlay_opacity
    assert settings.threshold_override is None
    assert settings.segmentation_mode == defaults.segmentation_mode
    assert settings.window_geometry is None and settings.recent_models == []
    assert settings.results_db is None
    assert len(warnings) == 7
    assert any("unknown setting 'colour'" in w for w in warnings)
    assert any("overlay_opacity" in w and "between 0 and 1" in w for w in warnings)


def test_types_are_strict(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"threshold_override": True, "overlay_opacity": "0.5"}))
    settings, warnings = load_settings(path)
    assert settings == Settings() and len(warnings) == 2
    path.write_text(json.dumps({"threshold_override": 2, "overlay_opacity": 1}))
    settings, warnings = load_settings(path)
    assert warnings == [] and settings.threshold_override == 2.0 and settings.overlay_opacity == 1.0


def test_newer_version_warns_but_keeps_known_values(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"version": 99, "overlay_opacity": 0.2}))
    settings, warnings = load_settings(path)
    assert settings.overlay_opacity == 0.2 and settings.version == SETTINGS_VERSION
    assert any("newer" in w for w in warnings)


def test_default_path_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path))
    assert default_settings_path() == tmp_path / "settings.json"
    save_settings(Settings(overlay_opacity=0.9))
    assert load_settings()[0].overlay_opacity == 0.9
