"""``inspector export``: write a fitted model as one ONNX graph (preprocessing, calibration and fast map inside)."""

from __future__ import annotations

import argparse
import os

from inspector.cli.common import warn

HELP = "export a fitted model (fusion or gaussian) to ONNX, with preprocessing, threshold and fast map inside"
VERIFY_RTOL = 1e-4
"""Relative difference of raw scores between torch and onnxruntime that the export check accepts
(:data:`inspector.export.accelerated.PARITY_RTOL`, the station's check, is the same)."""


def opset(text: str) -> int:
    """argparse type of ``--opset``: an integer of at least 17."""
    from inspector.export.onnx_export import MIN_OPSET

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < MIN_OPSET:
        raise argparse.ArgumentTypeError(f"must be {MIN_OPSET} or newer, got {value}")
    return value


def add_arguments(parser) -> None:
    """Arguments of ``inspector export``."""
    from inspector.cli.sign_cmd import add_trusted_key

    add_trusted_key(parser)
    parser.add_argument("model", metavar="MODEL", help="fitted model file (.safetensors)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="ONNX file to write")
    parser.add_argument("--opset", type=opset, default=17, help="ONNX opset, 17 or newer (default 17)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip running the exported graph with onnxruntime against the torch model")


def check_arguments(args) -> None:
    """Refuse, before any work, a missing model, an output that is not a writable ``.onnx`` file, a missing onnx.

    Raises:
        ValueError: with a message that says which.
    """
    from inspector.storage.model_file import check_output_path

    if not os.path.isfile(args.model):
        what = "is a folder, not a model file" if os.path.isdir(args.model) else "does not exist"
        raise ValueError(f"model {args.model} {what}")
    if not args.output.lower().endswith(".onnx"):
        raise ValueError(f"-o {args.output}: the output must be an .onnx file (e.g. part.onnx)")
    if os.path.abspath(args.output) == os.path.abspath(args.model):
        raise ValueError("-o: the output would replace the model file itself")
    check_output_path(args.output)
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ValueError("exporting needs the onnx package: pip install 'inspector[onnx]' "
                         "(onnx and onnxruntime)") from None


def verify(model, path: str) -> str | None:
    """Decide probe frames with torch and with onnxruntime; a message when they differ, else ``None``.

    The check the station makes before it runs a model on its graph
    (:func:`inspector.export.accelerated.parity_problem`): the model's own reference images
    when its reference folder is still there, a mid-gray and a fixed noise frame; raw scores
    within :data:`VERIFY_RTOL` relative, the same verdicts, fast maps within 1e-3.
    """
    from inspector.export.accelerated import parity_frames, parity_problem
    from inspector.export.onnx_runtime import OnnxModel

    problem, _ = parity_problem(model, OnnxModel(path, ["CPUExecutionProvider"]), parity_frames(model))
    return None if problem is None else f"onnxruntime: {problem}"


def run(args) -> int:
    """Load the model, export it, check the graph with onnxruntime and print a summary.

    Returns 0, or 1 when onnxruntime's scores of the written graph differ from torch's.
    """
    from inspector.cli.common import load_model
    from inspector.export.onnx_export import check_exportable, export_onnx

    check_arguments(args)
    model = load_model(args.model, device="cpu", args=args)
    check_exportable(model)
    meta = export_onnx(model, args.output, opset=args.opset)
    size_mb = os.path.getsize(args.output) / 1e6
    print(f"onnx:       {args.output} ({size_mb:.1f} MB, opset {args.opset})")
    print(f"model:      {model.detector_kind} on {model.backbone}, hash {model.model_hash[:16]}")
    print(f"input:      images uint8 (N, {meta['input_size']}, {meta['input_size']}, 3) RGB; resize frames "
          "outside (INTER_AREA when shrinking)")
    print(f"outputs:    {', '.join(meta['outputs'])}")
    print(f"threshold:  {meta['threshold']:.6g} (raw), policy {meta['calibration']['policy']}")
    if args.no_verify:
        return 0
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        warn("onnxruntime is not installed: the exported graph was not checked against torch")
        return 0
    problem = verify(model, args.output)
    if problem:
        warn(f"{problem}; do not deploy {args.output}")
        return 1
    else:
        print(f"verified:   onnxruntime decides probe images like torch (raw scores within {VERIFY_RTOL:g} "
              "relative, same verdicts, fast maps within 1e-3)")
    return 0
