"""``--trusted-key`` on the commands that load a model: unsigned or foreign-signed models are refused (exit 3)."""

from __future__ import annotations

import shutil

from inspector.cli.main import main
from inspector.core.exit_codes import EXIT_MODEL


def test_score_and_info_refuse_models_not_signed_by_a_trusted_key(model_path, dataset, tmp_path, capsys):
    model = tmp_path / "part.safetensors"
    shutil.copy(model_path, model)
    key, other = tmp_path / "line.key", tmp_path / "other.key"
    assert main(["sign", "--new-key", str(key)]) == 0
    assert main(["sign", "--new-key", str(other)]) == 0
    image = next((dataset / "test" / "good").iterdir())

    assert main(["info", str(model), "--trusted-key", f"{key}.pub"]) == EXIT_MODEL
    assert "sign" in capsys.readouterr().err.lower()
    assert main(["sign", str(model), "--key", str(other)]) == 0
    assert main(["score", str(model), str(image), "--trusted-key", f"{key}.pub", "-q"]) == EXIT_MODEL
    capsys.readouterr()

    assert main(["sign", str(model), "--key", str(key)]) == 0
    assert main(["info", str(model), "--trusted-key", f"{key}.pub"]) == 0
    assert main(["score", str(model), str(image), "--trusted-key", f"{key}.pub", "-q"]) == 0
    assert main(["info", str(model)]) == 0  # without the option (and no settings policy) nothing is required
