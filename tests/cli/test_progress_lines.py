"""Progress on a non-terminal stderr: a few readable lines, not thousands of bar updates."""

from __future__ import annotations

import io

from inspector.cli.progress_bar import log_lines, progress_bar


def test_log_lines_are_rate_limited_and_mark_each_step_and_its_end():
    stream, now = io.StringIO(), [0.0]
    update = log_lines(stream, "fit", interval=10.0, clock=lambda: now[0])
    for done in range(1, 1001):  # 1000 updates over 50 s
        now[0] = done * 0.05
        update(done, 1000, "features")
    for done in range(1, 11):
        update(done, 10, "calibration")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "inspector: fit: features 1/1000 (0 %)"
    assert "inspector: fit: features 1000/1000 (100 %)" in lines
    assert lines[-1] == "inspector: fit: calibration 10/10 (100 %)"
    assert 6 <= len(lines) <= 9, lines  # start, about every 10 s, end; then the next step's start and end
    assert "\r" not in stream.getvalue()


def test_a_piped_stderr_gets_lines_and_quiet_gets_nothing(capsys, monkeypatch):
    monkeypatch.setenv("INSPECTOR_PROGRESS_INTERVAL", "3600")
    with progress_bar(False, "score") as progress:
        for done in range(500):
            progress.update(done + 1, 500, "images")
    err = capsys.readouterr().err
    assert err.splitlines() == ["inspector: score: images 1/500 (0 %)", "inspector: score: images 500/500 (100 %)"]
    with progress_bar(True, "score") as progress:
        progress.update(1, 2, "images")
    assert capsys.readouterr().err == ""
