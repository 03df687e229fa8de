"""Every command's help prints (argparse %-formats help strings: a stray % breaks it)."""

from __future__ import annotations

import pytest

from inspector.cli.main import COMMANDS, main


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in COMMANDS])
def test_help_prints_and_exits_0(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: inspector")
    if argv == ["--help"]:
        assert all(name in out for name in COMMANDS)
