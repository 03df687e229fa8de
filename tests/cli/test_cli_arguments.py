"""Bad command-line values are refused while parsing: one line on stderr, exit 2, before any work.

The model paths given are missing on purpose: had a value slipped through, the
command would have started and failed on the model (exit 3), not on the argument.
"""

from __future__ import annotations

import argparse

import pytest

from inspector.cli import common
from inspector.cli.main import build_parser, main

MISSING_MODEL = "/nonexistent/model.safetensors"

BAD = [
    (["score", MISSING_MODEL, "x", "--batch-size", "-5"], "--batch-size: must be a positive integer"),
    (["score", MISSING_MODEL, "x", "--batch-size", "0"], "--batch-size: must be a positive integer"),
    (["score", MISSING_MODEL, "x", "--batch-size", "four"], "'four' is not an integer"),
    (["score", MISSING_MODEL, "x", "--threshold", "nan"], "not a finite number"),
    (["score", MISSING_MODEL, "x", "--opacity", "1.5"], "--opacity: must be between 0 and 1"),
    (["score", MISSING_MODEL, "x", "--device", "banana"], "'banana' is not a torch device"),
    (["score", MISSING_MODEL, "x", "--device", "cpu:1"], "is not a torch device"),
    (["speed", "--image-size", "7"], "--image-size: must be between 32 and 1024"),
    (["speed", "--image-size", "100000"], "--image-size: must be between 32 and 1024"),
    (["speed", "--fit-images", "3"], "--fit-images: must be an integer of at least 10"),
    (["speed", "--repeats", "0"], "--repeats: must be a positive integer"),
    (["speed", "--backbone", "banana"], "invalid choice: 'banana'"),
    (["benchmark", "/nonexistent", "--image-size", "-1"], "--image-size: must be between 32 and 1024"),
    (["drift", MISSING_MODEL, "x", "--alpha", "1.5"], "--alpha: must be between 0 and 1"),
    (["fit", "/nonexistent", "-o", "/tmp/never.safetensors", "--folds", "1"], "--folds: must be an integer of at least 2"),
    (["fit", "/nonexistent", "-o", "/tmp/never.safetensors", "--frr", "0"], "--frr: must be between 0 and 1"),
    (["fit", "/nonexistent", "-o", "/tmp/never.safetensors", "--image-size", "7"], "--image-size: must be between"),
    (["calibrate", MISSING_MODEL, "--good", "x", "--escape", "1"], "--escape: must be at least 0 and below 1"),
    (["gui", "--quit-after", "0"], "--quit-after: must be a positive integer"),
    (["results", "--limit", "0"], "--limit: must be a positive integer"),
    (["results", "--wait", "-1"], "--wait: must be 0 or more"),
    (["make-dataset", "/nonexistent/out", "--size", "16"], "--size: must be an integer of at least 32"),
    (["make-dataset", "/nonexistent/out", "--train", "-1"], "--train: must be a positive integer"),
    (["make-dataset", "/nonexistent/out", "--seed", "-1"], "--seed: must be 0 or more"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_bad_value_is_an_argument_error_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"inspector {argv[0]}: error: argument")


def test_device_cuda_without_cuda_is_a_clear_message(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        main(["score", MISSING_MODEL, "x", "--device", "cuda"])
    assert exit_info.value.code == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err


def test_device_values_accepted():
    assert common.device_spec("cpu") == "cpu"
    assert common.device_spec(" CPU ") == "cpu"
    import torch

    if torch.cuda.is_available():
        assert common.device_spec("cuda:0") == "cuda:0"
        with pytest.raises(argparse.ArgumentTypeError, match="CUDA device"):
            common.device_spec(f"cuda:{torch.cuda.device_count()}")


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _accepts(parse, text: str) -> bool:
    try:
        parse(text)
    except argparse.ArgumentTypeError:
        return False
    return True


def _minimal_argv(name: str, sub: argparse.ArgumentParser) -> list[str]:
    argv = [name]
    for action in sub._actions:
        if not action.option_strings and action.dest != "help":
            argv.append("x")
        elif action.required:
            argv += [action.option_strings[0], "x"]
    return argv


def test_every_numeric_option_of_every_command_is_checked(capsys):
    """No option is a bare int or float, and each refuses -1 (integers) or nan (numbers)."""
    parser = build_parser()
    checked = 0
    for name, sub in _subparsers(parser):
        for action in sub._actions:
            assert action.type not in (int, float), f"{name} {action.option_strings}: unchecked number"
            if getattr(action.type, "__module__", "") != common.__name__ or action.type is common.device_spec:
                continue
            bad = "nan" if _accepts(action.type, "0.5") else "-1"  # numbers refuse nan, integers -1
            with pytest.raises(SystemExit) as exit_info:
                parser.parse_args([*_minimal_argv(name, sub), action.option_strings[-1], bad])
            assert exit_info.value.code == 2, f"{name} {action.option_strings[-1]} {bad} accepted"
            checked += 1
    capsys.readouterr()
    assert checked >= 20  # score, speed, fit, calibrate, drift, results, gui, make-dataset, benchmark


def test_heatmaps_into_a_file_is_refused_before_the_model_is_read(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    code = main(["score", MISSING_MODEL, str(tmp_path), "--heatmaps", str(target)])
    assert code == 2
    err = capsys.readouterr().err
    assert "--heatmaps" in err and "not a folder" in err
    assert target.read_text() == "not a folder"


def test_batch_size_below_the_image_count_scores_each_image_once(model_path, dataset, capsys):
    import json

    images = sorted((dataset / "test" / "good").glob("*.png"))[:5]
    code = main(["score", str(model_path), *map(str, images), "--batch-size", "2", "--format", "jsonl", "--quiet"])
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["path"] for r in records] == [str(p) for p in images]
