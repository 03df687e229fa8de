"""Helpers shared by the sub-commands: argument types that check values while parsing, reading image
folders, loading models, messages.

Every numeric option of every command is checked by :func:`validate_numeric_options` (applied by
:func:`inspector.cli.main.build_parser`) and ``--device`` by :func:`device_spec`: a bad value is an
argparse error, one line and exit code 2, before any work starts.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from inspector.core.imageio import LoadedImages, list_images, read_images
from inspector.core.progress import Progress


def add_quiet(parser) -> None:
    """The ``--quiet`` flag that silences progress bars."""
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")


def add_device(parser) -> None:
    """The ``--device`` option (CUDA when available by default)."""
    parser.add_argument("--device", default=None, type=device_spec,
                        help="torch device: cpu, cuda, cuda:N or mps (default: cuda if present)")


def warn(message: str) -> None:
    """A warning line on stderr."""
    print(f"inspector: warning: {message}", file=sys.stderr)


def load_folder(paths: Sequence[str | Path], progress: Progress, what: str, recursive: bool = True) -> LoadedImages:
    """Read all images under ``paths``; non-images and unreadable files are reported, not fatal.

    Raises:
        ValueError: when no readable image is found.
    """
    listing = list_images(paths, recursive=recursive)
    loaded = read_images(listing.images, progress)
    report_skipped(listing.skipped, loaded.errors, listing.problems)
    if not loaded.images:
        where = ", ".join(str(p) for p in paths)
        raise ValueError(f"no readable {what} images in {where}")
    return loaded


def report_skipped(skipped: Sequence[Path], errors: Sequence[tuple[Path, str]],
                   problems: Sequence[tuple[Path, str]] = ()) -> None:
    """List non-image files, unreadable images and what the listing could not enter on stderr.

    ``problems`` are the listing's (path, reason) pairs: unreadable sub-folders,
    symbolic-link loops, entries that are not regular files.
    """
    for path, reason in problems:
        warn(f"not listed: {path}: {reason}")
    if skipped:
        warn(f"skipped {len(skipped)} non-image file(s): " + ", ".join(str(p) for p in skipped[:10])
             + (" ..." if len(skipped) > 10 else ""))
    for _, message in errors:
        warn(f"unreadable image: {message}")


def output_folder(path: str | Path, option: str) -> Path:
    """Create (if needed) and check a folder the command will write into, before any work.

    Raises:
        ValueError: when ``path`` is a file, or a folder that cannot be created or written.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{option} {folder}: cannot create the folder ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {folder}: the folder cannot be written")
    return folder


RUNTIMES = ("auto", "torch", "onnx", "openvino")
"""``--runtime`` choices (see :func:`load_model`)."""


def add_runtime(parser) -> None:
    """The ``--runtime`` option: which engine runs the model's decisions."""
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="auto (default): a .onnx file on onnxruntime; a .safetensors model on its exported graph "
                             "(onnxruntime, cached, checked against torch at load) when that passes parity, else "
                             "torch; torch: the torch model; onnx / openvino: insist on that engine")


def check_runtime(path: str, runtime: str | None) -> str:
    """The kind of model file ``path`` is for ``--runtime``: ``"torch"`` (a ``.safetensors`` model,
    whose decisions may still run on its exported graph, see :func:`load_model`) or ``"onnx"``
    (an exported graph, on onnxruntime or OpenVINO).

    Raises:
        ValueError: ``--runtime torch`` with an exported ``.onnx`` file.
    """
    from inspector.export.onnx_runtime import is_onnx_path

    actual = "onnx" if is_onnx_path(path) else "torch"
    if actual == "onnx" and runtime == "torch":
        raise ValueError(f"--runtime torch runs .safetensors model files: {path} is an exported ONNX graph; "
                         "give the .safetensors model it was exported from, or use --runtime onnx")
    return actual


def accelerated(model, runtime: str | None = "auto", trust=None, announce: bool = True):
    """``model`` deciding on its fastest runtime (:func:`inspector.export.accelerated.accelerate`),
    with one line on stderr that says which runtime and why (the fallback's reason on torch).

    Raises:
        ValueError: an insisted ``--runtime onnx|openvino`` that cannot run the model.
    """
    from inspector.export.accelerated import accelerate

    model, choice = accelerate(model, runtime or "auto", trust=trust)
    logging.getLogger("inspector.export.accelerated").info("%s", choice.line())
    if announce:
        print(f"inspector: {choice.line()}", file=sys.stderr)
    return model


def load_model(path: str, device: str | None = None, weights: str | None = None, args=None, exported: bool = False,
               accelerate: bool | None = None):
    """Load a model file: a ``.onnx`` export as :class:`~inspector.export.onnx_runtime.OnnxModel`
    (onnxruntime, or :class:`~inspector.export.openvino_runtime.OpenVinoModel` with ``--runtime
    openvino``; no torch), anything else as :class:`~inspector.pipeline.model.InspectionModel`
    (imports torch lazily).

    With ``args`` from a command that has ``--trusted-key``, the signature policy
    includes those keys (on top of the settings' and the environment's); with
    ``--runtime``, the file must suit it (:func:`check_runtime`). Only callers that
    run decisions alone (``score``) pass ``exported=True``; for the others an exported
    file is a usage error that names the ``.safetensors`` model they need.

    A ``.safetensors`` model is *accelerated* (its decisions and fast maps run on its
    exported graph, :mod:`inspector.export.accelerated`; the torch model stays for the
    rest) when ``accelerate`` is true, or when it is ``None`` and the caller runs
    decisions (``exported=True``) locally (not ``--engine ray``): with ``--runtime auto``
    when onnxruntime runs it with parity (else torch, with the reason on stderr), with
    ``--runtime onnx|openvino`` on that engine or a usage error, never with ``--runtime torch``.

    Raises:
        ValueError: a ``--runtime`` that does not match the file, an exported file where
            ``exported`` is false, ``--weights`` with an export, a ``--device`` onnxruntime
            does not run, or an insisted runtime that cannot run the model.
    """
    trust = None
    if args is not None and getattr(args, "trusted_key", None):
        from inspector.cli.sign_cmd import trust_from_args

        trust = trust_from_args(args)
    runtime = getattr(args, "runtime", None)
    if check_runtime(path, runtime) == "onnx":
        from inspector.export.onnx_runtime import load_onnx_model

        if not exported:
            command = getattr(args, "command", None) or "this command"
            raise ValueError(f"{command} needs the .safetensors model file: {path} is an exported ONNX graph "
                             "(only `inspector score` and the station run exported models)")
        if weights:
            raise ValueError("--weights goes with .safetensors models; an exported model has its weights inside")
        if runtime == "openvino" and device not in (None, "cpu"):
            raise ValueError(f"--device {device}: --runtime openvino runs on the CPU")
        providers = ["CPUExecutionProvider"] if device == "cpu" else None
        if device not in (None, "cpu") and not str(device).startswith("cuda"):
            raise ValueError(f"--device {device}: an exported model runs on the CPU or CUDA (onnxruntime)")
        return load_onnx_model(path, trust=trust, providers=providers,
                               runtime="openvino" if runtime == "openvino" else "onnx")
    ray = getattr(args, "engine", None) == "ray"
    if ray and runtime in ("onnx", "openvino"):
        raise ValueError(f"--runtime {runtime} with a .safetensors model runs its exported graph locally; "
                         "--engine ray scores with torch in its actors (use --runtime auto or torch)")
    if accelerate is None:
        accelerate = exported and not ray
    from inspector.pipeline.model import InspectionModel

    model = InspectionModel.load(path, device=device, weights=weights, trust=trust)
    if not accelerate or runtime == "torch":
        return model
    if trust is None:
        from inspector.storage.signing import default_trust_policy

        trust = default_trust_policy()
    return accelerated(model, runtime, trust=trust)


# -- argument types: every numeric option is checked when the command line is parsed --------

IMAGE_SIZE_MIN = 32
"""The smallest network input the backbones accept (five stride-2 stages leave one cell)."""
IMAGE_SIZE_MAX = 1024
"""The largest network input accepted (memory, not the network, sets this bound)."""


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = _number(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    value = _number(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: an integer of at least ``minimum``."""
    def parse(text: str) -> int:
        value = _number(text, int, "an integer")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer of at least {minimum}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


def image_size(text: str) -> int:
    """argparse type: a network input size the backbones accept (32 to 1024 pixels)."""
    value = _number(text, int, "an integer number of pixels")
    if not IMAGE_SIZE_MIN <= value <= IMAGE_SIZE_MAX:
        raise argparse.ArgumentTypeError(
            f"must be between {IMAGE_SIZE_MIN} and {IMAGE_SIZE_MAX} pixels (the smallest input the "
            f"backbone accepts is {IMAGE_SIZE_MIN}), got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number (no nan, no inf)."""
    return _number(text, float, "a number")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number of at least 0."""
    value = _number(text, float, "a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value:g}")
    return value


def open_fraction(text: str) -> float:
    """argparse type: a rate strictly between 0 and 1 (e.g. a target false-reject rate)."""
    value = _number(text, float, "a number")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value:g}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number from 0 to 1 inclusive (e.g. an opacity)."""
    value = _number(text, float, "a number")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


def below_one(text: str) -> float:
    """argparse type: a rate from 0 up to, not including, 1 (e.g. a target escape rate)."""
    value = _number(text, float, "a number")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {value:g}")
    return value


NUMERIC_RULES: dict[str, Callable[[str], Any]] = {
    "image_size": image_size,
    "size": int_at_least(IMAGE_SIZE_MIN),
    "folds": int_at_least(2),
    "seed": non_negative_int,
    "test_good": non_negative_int,
    "test_defect": non_negative_int,
    "frr": open_fraction,
    "alpha": open_fraction,
    "escape": below_one,
    "opacity": fraction,
    "threshold": finite_float,
    "wait": non_negative_float,
}
"""The check of a numeric option by its name; an option not named here must be a positive
integer (``type=int``) or a finite number (``type=float``)."""


def validate_numeric_options(parser: argparse.ArgumentParser) -> None:
    """Give every plain ``type=int`` / ``type=float`` option of ``parser`` a checking type.

    Applied by :func:`inspector.cli.main.build_parser` to every sub-command, so a
    numeric option added later cannot take ``-5``, ``0``, ``nan`` or ``inf`` unnoticed:
    the rule is :data:`NUMERIC_RULES` by the option's name, else positive integers and
    finite numbers. Options that already have their own type are left as they are.
    A bad value is an argparse error: one line on stderr and exit code 2, before any work.
    """
    for action in parser._actions:  # argparse keeps no public list of a parser's actions
        if action.type not in (int, float):
            continue
        rule = NUMERIC_RULES.get(action.dest)
        action.type = rule or (positive_int if action.type is int else finite_float)


def device_spec(text: str) -> str:
    """argparse type of ``--device``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, present on this machine.

    Torch is imported only when the option is given (to ask whether CUDA or MPS is there).
    """
    spec = text.strip().lower()
    match = re.fullmatch(r"(cpu|cuda|mps)(?::(\d+))?", spec)
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise argparse.ArgumentTypeError(f"{text!r} is not a torch device (use cpu, cuda, cuda:N or mps)")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return spec
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available on this machine (use --device cpu)")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {count} CUDA device(s) (cuda:0 to "
                                             f"cuda:{count - 1})")
        return spec
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS (Apple GPU) is not available on this machine")
    return spec
