"""Settings: round trip, forgiving load, atomic save."""

from __future__ import annotations

import json
import os

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
    kept = list(tmp_path.glob("settings.json.broken-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"overlay_opacity": 0.3,'
    assert str(kept[0]) in warnings[0]
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


# ---- nothing the user wrote is destroyed; model paths are absolute --------------------------

def _backups(folder, stem="settings.json"):
    return sorted(p for p in folder.iterdir() if p.name.startswith(stem + "."))


def test_non_utf8_file_is_kept_before_the_save_on_exit_replaces_it(tmp_path):
    path = tmp_path / "settings.json"
    original = b'{"overlay_opacity": 0.3, "last_source": "folder:/caf\xe9"}'  # Latin-1, not UTF-8
    path.write_bytes(original)
    settings, warnings = load_settings(path)
    assert settings == Settings() and "not UTF-8" in warnings[0]
    save_settings(settings, path)  # what the station does on exit
    kept = _backups(tmp_path)
    assert [p.read_bytes() for p in kept] == [original]
    assert json.loads(path.read_text())["version"] == SETTINGS_VERSION


def test_newer_version_file_is_kept_before_it_is_rewritten(tmp_path):
    path = tmp_path / "settings.json"
    newer = json.dumps({"version": 7, "overlay_opacity": 0.2, "station_layout": "split"})
    path.write_text(newer)
    settings, warnings = load_settings(path)
    assert settings.overlay_opacity == 0.2
    save_settings(settings, path)
    kept = _backups(tmp_path)
    assert len(kept) == 1 and kept[0].name.startswith("settings.json.v7-") and kept[0].read_text() == newer
    assert any(str(kept[0]) in w for w in warnings)
    # Loading and saving again keeps one copy of the same content, not one per start.
    load_settings(path)
    save_settings(settings, path)
    assert len(_backups(tmp_path)) == 1


def test_a_broken_file_that_cannot_be_copied_aside_is_not_replaced(tmp_path, monkeypatch):
    import shutil

    path = tmp_path / "settings.json"
    path.write_bytes(b"\xff\xfe not settings")

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", refuse)
    try:
        save_settings(Settings(), path)
    except OSError as exc:
        assert "not replaced" in str(exc)
    else:
        raise AssertionError("a file that could not be kept was replaced")
    assert path.read_bytes() == b"\xff\xfe not settings"


def test_each_broken_file_gets_its_own_copy(tmp_path):
    path = tmp_path / "settings.json"
    for text in ("{broken", "[still broken]"):
        path.write_text(text)
        load_settings(path)
    assert sorted(p.read_text() for p in _backups(tmp_path)) == sorted(["{broken", "[still broken]"])


def test_relative_model_paths_are_saved_absolute(tmp_path, monkeypatch):
    work = tmp_path / "bench"
    work.mkdir()
    monkeypatch.chdir(work)
    settings = Settings(last_model="models/part.safetensors")
    settings.add_recent_model("models/part.safetensors")
    settings.add_recent_model(str(work / "models" / "part.safetensors"))
    path = save_settings(settings, tmp_path / "cfg" / "settings.json")
    monkeypatch.chdir(tmp_path)  # the station starts from another folder
    loaded, _ = load_settings(path)
    assert loaded.last_model == str(work / "models" / "part.safetensors")
    assert loaded.recent_models == [str(work / "models" / "part.safetensors")]
    assert os.path.isabs(loaded.last_model)


def test_signature_settings_round_trip_and_validation(tmp_path):
    path = tmp_path / "settings.json"
    save_settings(Settings(trusted_keys=["/keys/qa.pub"], require_signed_models=True), path)
    loaded, warnings = load_settings(path)
    assert warnings == [] and loaded.trusted_keys == ["/keys/qa.pub"] and loaded.require_signed_models
    path.write_text(json.dumps({"trusted_keys": "/keys/qa.pub", "require_signed_models": "yes"}))
    loaded, warnings = load_settings(path)
    assert loaded.trusted_keys == [] and loaded.require_signed_models is False and len(warnings) == 2
