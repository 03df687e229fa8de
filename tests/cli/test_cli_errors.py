"""What reaches ``inspector``'s main: one line and a documented exit code, never a bare traceback."""

from __future__ import annotations

import pytest

import inspector.cli.info_cmd as info_cmd
from inspector.cli.main import EXIT_INTERNAL, main
from inspector.core.exit_codes import EXIT_MODEL, EXIT_USAGE
from inspector.storage.results_db import ResultStoreError


def _raising(exc: BaseException):
    def run(args):
        raise exc

    return run


@pytest.mark.parametrize(("exc", "code", "message"), [
    (PermissionError(13, "Permission denied", "/data/lot7/a.png"), EXIT_USAGE, "/data/lot7/a.png: Permission denied"),
    (IsADirectoryError(21, "Is a directory", "/data/out"), EXIT_USAGE, "/data/out: Is a directory"),
    (OSError(28, "No space left on device", "/data/db"), EXIT_USAGE, "/data/db: No space left on device"),
    (FileNotFoundError("/x: no results database"), EXIT_USAGE, "/x: no results database"),
    (ResultStoreError("/x.db: not a usable results database"), EXIT_USAGE, "/x.db: not a usable results database"),
    (ValueError("--alpha must be between 0 and 1"), EXIT_USAGE, "--alpha must be between 0 and 1"),
], ids=["permission", "is-a-directory", "disk-full", "missing", "store", "value"])
def test_expected_errors_are_one_line_with_their_exit_code(monkeypatch, capsys, exc, code, message):
    monkeypatch.setattr(info_cmd, "run", _raising(exc))
    assert main(["info", "model.safetensors"]) == code
    err = capsys.readouterr().err
    assert err.strip() == f"inspector: error: {message}"


def test_model_errors_exit_3(tmp_path, capsys):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"garbage")
    assert main(["info", str(bad)]) == EXIT_MODEL
    err = capsys.readouterr().err
    assert err.startswith("inspector: error:") and "Traceback" not in err


def test_a_bug_is_one_internal_error_line_and_the_traceback_with_verbose(monkeypatch, capsys):
    monkeypatch.setattr(info_cmd, "run", _raising(TypeError("unsupported operand")))
    assert main(["info", "model.safetensors"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.strip() == ("inspector: internal error: TypeError: unsupported operand "
                           "(run again with -v for the traceback)")

    assert main(["-v", "info", "model.safetensors"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "TypeError: unsupported operand" in err
    assert err.strip().splitlines()[-1] == "inspector: internal error: TypeError: unsupported operand"


def test_internal_error_code_is_not_a_documented_outcome():
    assert EXIT_INTERNAL not in (0, EXIT_USAGE, EXIT_MODEL, 4, 130)
