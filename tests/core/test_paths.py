"""One place decides where files go; the environment overrides reach every default."""

from __future__ import annotations

from inspector.core import paths
from inspector.demo import demo_dir
from inspector.gui.refit_dialog import default_model_path


def test_environment_overrides_reach_every_default(tmp_path, monkeypatch):
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INSPECTOR_CONFIG_DIR", str(tmp_path / "config"))
    assert paths.data_dir() == tmp_path / "data" and paths.config_dir() == tmp_path / "config"
    assert demo_dir() == tmp_path / "data" / "demo"
    assert default_model_path().startswith(str(tmp_path / "data" / "models") + "/")
    from inspector.storage.results_db import default_db_path
    from inspector.storage.settings import default_settings_path

    assert default_db_path().parent == tmp_path / "data"
    assert default_settings_path().parent == tmp_path / "config"


def test_without_overrides_the_platform_folders_have_no_vendor_level(monkeypatch):
    monkeypatch.delenv("INSPECTOR_DATA_DIR", raising=False)
    monkeypatch.delenv("INSPECTOR_CONFIG_DIR", raising=False)
    assert paths.data_dir().name == "inspector" and paths.config_dir().name == "inspector"
    assert paths.data_dir().parent.name != "inspector"
