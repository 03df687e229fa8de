"""``inspector score --db``: every scored file recorded (OK, NG, ERROR, content hash), and a rerun resumes."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid

import pytest

from inspector.cli.main import main
from inspector.scale.pg_server import find_bin_dir
from inspector.storage.results_db import file_digest


@pytest.fixture
def images(dataset, tmp_path):
    """Twelve test images of the generated category and one file that is not a readable PNG."""
    folder = tmp_path / "lot"
    folder.mkdir()
    for source in sorted((dataset / "test").rglob("*.png"))[:12]:
        shutil.copy(source, folder / f"{source.parent.name}_{source.name}")
    (folder / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def _score(capsys, *args):
    code = main(["score", *map(str, args), "--format", "jsonl", "--quiet"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_sqlite_records_every_file_and_a_rerun_skips_them(model_path, images, tmp_path, capsys):
    db = tmp_path / "results.sqlite3"
    code, first, err = _score(capsys, model_path, images, "--db", db, "--station", "cell-4")
    assert code == 0 and len(first) == 13 and "skipped 0 file(s)" in err and "13 new" in err
    code, plain, _ = _score(capsys, model_path, images)  # the same records without a database
    assert plain == first
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM decisions ORDER BY frame_id").fetchall()
    assert len(rows) == 13 and {r["station"] for r in rows} == {"cell-4"} and {r["source"] for r in rows} == {"score"}
    assert rows[-1]["verdict"] == "ERROR" and "error" in first[-1] and rows[-1]["error"] == first[-1]["error"]
    for row, record in zip(rows, first):
        assert row["path"] == str((images / record["path"].rsplit("/", 1)[-1]).resolve())
        assert row["content_hash"] == file_digest(row["path"]) and row["uid"].startswith("score-")
        if "error" not in record:
            assert row["verdict"] == ("NG" if record["anomalous"] else "OK")
            assert row["score"] == pytest.approx(record["score"], abs=1e-6)
    conn.close()

    code, again, err = _score(capsys, model_path, images, "--db", db)
    assert code == 0 and again == [] and "skipped 13 file(s)" in err and "; 0 new" in err

    changed = sorted(images.glob("*.png"))[0]  # new content under an old name: scored again
    shutil.copy(sorted(images.glob("*.png"))[1], changed)
    code, third, err = _score(capsys, model_path, images, "--db", db)
    assert [r["path"] for r in third] == [str(changed)] and "skipped 12 file(s)" in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 14


def test_options_that_need_each_other(model_path, images, capsys):
    assert main(["score", str(model_path), str(images), "--station", "x"]) == 2
    assert "--station" in capsys.readouterr().err
    assert main(["score", str(model_path), str(images), "--workers", "2"]) == 2
    assert "--engine ray" in capsys.readouterr().err


@pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL server binaries missing (apt-get install postgresql)")
def test_postgresql_target_resumes_the_same_way(model_path, images, capsys):
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'inspector[scale]')")
    from inspector.scale.pg_server import shared_server
    from inspector.storage.stores import open_store

    url = shared_server().create_database(f"score_{uuid.uuid4().hex[:10]}")
    code, first, err = _score(capsys, model_path, images, "--db", url, "--batch-size", "5")
    assert code == 0 and len(first) == 13
    code, again, err = _score(capsys, model_path, images, "--db", url)
    assert again == [] and "skipped 13 file(s)" in err
    with open_store(url, read_only=True) as store:
        rows = store.query(limit=None)
    assert len(rows) == 13 and len({r["path"] for r in rows}) == 13
    assert sorted(r["verdict"] for r in rows).count("ERROR") == 1
