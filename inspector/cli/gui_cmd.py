"""``inspector gui``: the station window (also what ``inspector`` alone opens)."""

from __future__ import annotations

HELP = "open the inspection station (default: the built-in demo)"


def add_arguments(parser) -> None:
    """Arguments of ``inspector gui``."""
    from inspector.sources.registry import spec_examples

    parser.add_argument("--model", metavar="MODEL", help="model file (default: the last one, else the demo)")
    parser.add_argument("--source", metavar="SPEC",
                        help=spec_examples())
    parser.add_argument("--quit-after", type=int, metavar="N",
                        help="process N frames, record them in the results database, then exit 0")
    parser.add_argument("--db", metavar="PATH", help="results database (default: in the user data folder)")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo even if settings name a model")


def run(args) -> int:
    """Start the Qt application (imported here so that other commands never load Qt)."""
    if args.quit_after is not None and args.quit_after < 1:
        raise ValueError("--quit-after needs a positive number of frames")
    from inspector.gui.app import run_gui

    return run_gui(model_path=args.model, source_spec=args.source, quit_after=args.quit_after,
                   db_path=args.db, demo=args.demo)
