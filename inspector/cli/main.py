"""Entry point of the ``inspector`` command.

Exit codes: see :mod:`inspector.core.exit_codes`. What reaches :func:`main`:

- argument errors: argparse's one line and exit 2, before any work (every numeric
  option and ``--device`` are checked while parsing, see :mod:`inspector.cli.common`);
- model-file and backbone errors: one line, exit 3;
- input errors (a missing, unreadable or unusable file or folder, a results database
  that cannot be read, a bad value found later): one line, exit 2;
- anything else is a bug: one line ``inspector: internal error: ...`` that says to run
  again with ``-v``, exit 1 (:data:`EXIT_INTERNAL`); with ``-v`` the traceback is logged too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import inspector
from inspector.cli import (
    benchmark_cmd,
    calibrate_cmd,
    dataset_cmd,
    drift_cmd,
    export_cmd,
    feedback_cmd,
    fit_cmd,
    gui_cmd,
    info_cmd,
    outbox_cmd,
    recipe_cmd,
    results_cmd,
    score_cmd,
    serve_cmd,
    sign_cmd,
    speed_cmd,
)

from inspector.cli.common import validate_numeric_options
from inspector.core.exit_codes import EXIT_CANCELLED, EXIT_INTERNAL, EXIT_MODEL, EXIT_USAGE  # noqa: F401 (re-exported)

COMMANDS = {
    "gui": gui_cmd,
    "fit": fit_cmd,
    "score": score_cmd,
    "calibrate": calibrate_cmd,
    "info": info_cmd,
    "drift": drift_cmd,
    "benchmark": benchmark_cmd,
    "speed": speed_cmd,
    "results": results_cmd,
    "make-dataset": dataset_cmd,
    "sign": sign_cmd,
    "export": export_cmd,
    "feedback": feedback_cmd,
    "serve": serve_cmd,
    "recipe": recipe_cmd,
    "outbox": outbox_cmd,
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per module in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="inspector",
        description="Unsupervised visual anomaly detection: learns from good images only. "
                    "Without a command, opens the station on the built-in demo.",
    )
    parser.add_argument("--version", action="version", version=f"inspector {inspector.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = sub.add_parser(name, help=module.HELP.replace("%", "%%"), description=module.HELP)
        module.add_arguments(command)
        validate_numeric_options(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from inspector.backbones.weights import WeightsError
    from inspector.core.imageio import ImageReadError
    from inspector.core.policy import ThresholdError
    from inspector.core.progress import Cancelled
    from inspector.storage.model_file import ModelFileError
    from inspector.storage.results_db import ResultStoreError

    # Before anything imports torch: its OpenMP runtime reads the wait policy when it loads.
    from inspector.core.thread_tuning import tune_threads

    tune_threads()
    if os.environ.get("INSPECTOR_MALLOC_TUNING", "1") != "0":
        # Measured with `inspector speed`: steadier and faster batched CPU inference.
        from inspector.core.malloc_tuning import tune_malloc

        tune_malloc()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    if args.command is None:
        args = parser.parse_args(["gui", *(argv or [])])
    try:
        return int(args.run(args) or 0)
    except (ModelFileError, WeightsError) as exc:
        print(f"inspector: error: {exc}", file=sys.stderr)
        return EXIT_MODEL
    except (ThresholdError, ImageReadError, ResultStoreError, ValueError) as exc:
        print(f"inspector: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, Cancelled):
        print("inspector: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return 0
    except OSError as exc:  # FileNotFoundError, PermissionError, IsADirectoryError, a full disk...
        print(f"inspector: error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bug: say so in one line; the traceback with -v
        if args.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        hint = "" if args.verbose else " (run again with -v for the traceback)"
        print(f"inspector: internal error: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return EXIT_INTERNAL


def os_error_message(exc: OSError) -> str:
    """``"PATH: reason"`` for an OS error (the file name first, as the other messages have it)."""
    if exc.filename is not None and exc.strerror:
        target = f" -> {exc.filename2}" if exc.filename2 else ""
        return f"{exc.filename}{target}: {exc.strerror}"
    return str(exc) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
