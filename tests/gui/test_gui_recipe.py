"""``inspector gui --recipe NAME``: the recipe's model, source, threshold override and map mode,
the recipe in every decision row, an audit entry; an unknown recipe is exit 2 naming the known ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inspector.storage.recipes import make_recipe, save_recipe
from inspector.storage.results_db import ResultStore

ROOT = Path(__file__).resolve().parents[2]


def _gui(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``inspector gui ARGS`` offscreen (the test's config and data folders, one thread)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "inspector", "gui", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_gui_recipe_opens_its_model_source_and_threshold_and_records_it(real_model_path, demo_images, tmp_path):
    # A tiny threshold override: every frame is NG, which only happens if the recipe's threshold was applied.
    save_recipe(make_recipe("part-a", str(real_model_path), threshold=1e-6,
                            source=f"folder:{demo_images.inspect_dir}", maps="off"))
    db = tmp_path / "r.sqlite3"
    done = _gui("--recipe", "part-a", "--db", str(db), "--quit-after", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    with ResultStore.open_read_only(db) as store:
        rows = store.query(limit=None)[::-1]
        audit = [entry for entry in store.query_audit() if entry["action"] == "recipe"]
    assert len(rows) == 3
    assert [r["recipe"] for r in rows] == ["part-a"] * 3
    assert all(r["source"] == f"folder:{demo_images.inspect_dir}" for r in rows)
    assert [(r["verdict"], r["threshold"]) for r in rows] == [("NG", 1e-6)] * 3
    assert len(audit) == 1 and audit[0]["new_value"] == "part-a" and audit[0]["old_value"] is None
    assert audit[0]["new_model_hash"] == rows[0]["model_hash"]


def test_gui_unknown_recipe_is_exit_2_with_the_known_ones(real_model_path, tmp_path):
    save_recipe(make_recipe("part-a", str(real_model_path)))
    save_recipe(make_recipe("part-b", str(real_model_path)))
    done = _gui("--recipe", "no-such", "--db", str(tmp_path / "r.sqlite3"), "--quit-after", "1", timeout=60)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "no recipe 'no-such'" in done.stderr and "part-a, part-b" in done.stderr
    assert not (tmp_path / "r.sqlite3").exists()  # refused before the station opened anything


def test_another_model_file_leaves_the_recipe_and_its_own_brings_it_back(make_window, qtbot, tmp_path):
    """Decisions after the operator opens another model are not claimed for the recipe; each change is audited."""
    from inspector.gui.app import Launcher
    from inspector.storage.recipes import Recipe
    from gui_stubs import stub_model

    window = make_window()
    recipe = Recipe("part-a", str(tmp_path / "part-a.safetensors"), threshold=None)
    station = window.station
    station.recipe = recipe.name
    Launcher(window, None, autostart=False, quit_after=None, recipe=recipe)
    station.set_model(stub_model(), recipe.model)  # the recipe's model: audited once, recipe kept
    assert station.recipe == "part-a" and station.recorder.recipe == "part-a"
    station.set_model(stub_model(), str(tmp_path / "other.safetensors"))
    assert station.recipe is None and station.recorder.recipe is None
    station.set_model(stub_model(), recipe.model)  # back to the recipe's model file
    assert station.recipe == "part-a"

    def entries():
        return [(e["old_value"], e["new_value"]) for e in station.store().query_audit() if e["action"] == "recipe"]

    qtbot.waitUntil(lambda: len(entries()) == 3, timeout=5000)
    assert entries()[::-1] == [(None, "part-a"), ("part-a", None), (None, "part-a")]
