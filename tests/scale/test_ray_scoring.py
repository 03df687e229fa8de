"""``inspector score --engine ray`` on a real local Ray instance: the same records as local scoring, in input
order; a job killed mid-way and rerun into PostgreSQL records every image exactly once; no Ray without --engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from inspector.cli.main import main
from inspector.scale.pg_server import find_bin_dir


def _score(capsys, *args):
    code = main(["score", *map(str, args), "--format", "jsonl", "--quiet"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_ray_gives_the_records_of_local_scoring(ray_address, scale_model, scale_images, capsys):
    code, local, _ = _score(capsys, scale_model, scale_images, "--batch-size", "4")
    assert code == 0 and len(local) == 31
    code, remote, err = _score(capsys, scale_model, scale_images, "--engine", "ray", "--workers", "2",
                               "--batch-size", "4")
    assert code == 0, err
    assert [r["path"] for r in remote] == [r["path"] for r in local]  # input order
    assert sum("error" in r for r in remote) == 1
    for mine, theirs in zip(local, remote):
        assert mine.keys() == theirs.keys()
        if "error" in mine:
            assert theirs["error"] == mine["error"]  # the same ERROR record for the unreadable file
            continue
        assert theirs["anomalous"] == mine["anomalous"] and theirs["threshold"] == mine["threshold"]
        assert theirs["raw_score"] == pytest.approx(mine["raw_score"], rel=1e-5)
        assert theirs["score"] == pytest.approx(mine["score"], rel=1e-5)
    assert {r["anomalous"] for r in local if "error" not in r} == {True, False}  # both verdicts occur


@pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL server binaries missing (apt-get install postgresql)")
def test_a_killed_job_resumes_and_every_image_is_recorded_once(ray_address, scale_model, scale_images, capsys):
    pytest.importorskip("psycopg", reason="psycopg not installed (pip install 'inspector[scale]')")
    from inspector.scale.pg_server import shared_server
    from inspector.storage.stores import open_store

    url = shared_server().create_database(f"ray_{uuid.uuid4().hex[:10]}")
    command = [sys.executable, "-m", "inspector.cli.main", "score", str(scale_model), str(scale_images), "--engine",
               "ray", "--address", ray_address, "--workers", "2", "--batch-size", "2", "--db", url, "--quiet",
               "--format", "jsonl"]
    env = dict(os.environ, OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    job = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    open_store(url).close()  # the tables exist for polling (the job migrates nothing more)
    deadline, recorded = time.monotonic() + 120, 0
    with open_store(url, read_only=True) as store:
        while time.monotonic() < deadline and job.poll() is None:
            recorded = store.count()
            if recorded >= 6:
                break
            time.sleep(0.05)
    assert job.poll() is None, f"the job ended before it could be killed: {job.stderr.read()}"
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    with open_store(url, read_only=True) as store:
        before = store.count()
    assert 6 <= before < 31

    code, records, err = _score(capsys, scale_model, scale_images, "--engine", "ray", "--workers", "2",
                                "--batch-size", "4", "--db", url)
    assert code == 0 and f"skipped {before} file(s)" in err and f"; {31 - before} new" in err
    assert len(records) == 31 - before
    with open_store(url, read_only=True) as store:
        rows = store.query(limit=None)
    assert len(rows) == 31 and len({r["path"] for r in rows}) == 31  # every image, once
    assert [r["verdict"] for r in rows].count("ERROR") == 1

    code, records, err = _score(capsys, scale_model, scale_images, "--engine", "ray", "--db", url)
    assert code == 0 and records == [] and "skipped 31 file(s)" in err and "; 0 new" in err


def test_without_engine_nothing_of_ray_is_imported(scale_model, scale_images, tmp_path):
    script = ("import sys; from inspector.cli.main import main; "
              f"code = main(['score', {str(scale_model)!r}, {str(scale_images)!r}, '--quiet', "
              f"'--db', {str(tmp_path / 'r.sqlite3')!r}]); "
              "assert code == 0; assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]")
    done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
