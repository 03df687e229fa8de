"""``inspector gui``: the station window (also what ``inspector`` alone opens)."""

from __future__ import annotations

import os

from inspector.cli.sign_cmd import add_trusted_key

HELP = "open the inspection station (default: the built-in demo)"


def add_arguments(parser) -> None:
    """Arguments of ``inspector gui``."""
    from inspector.sources.registry import spec_examples

    parser.add_argument("--model", metavar="MODEL", help="model file (default: the last one, else the demo)")
    parser.add_argument("--source", metavar="SPEC",
                        help=spec_examples())
    parser.add_argument("--quit-after", type=int, metavar="N",
                        help="process N frames, record them in the results database, then exit: 0, or 2 when the "
                             "source gives no frames or the model fails, 4 when decisions wait in the journal")
    parser.add_argument("--db", metavar="PATH|URL",
                        help="results database: an SQLite file or postgresql://USER@HOST[:PORT]/DB "
                             "(default: an SQLite file in the user data folder)")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo even if settings name a model")
    parser.add_argument("--recipe", metavar="NAME",
                        help="open this recipe (inspector recipe list): its model, threshold override, source and "
                             "map mode; every decision records the recipe, and the audit trail the choice")
    add_trusted_key(parser)


def run(args) -> int:
    """Start the Qt application (imported here so that other commands never load Qt)."""
    if args.quit_after is not None and args.quit_after < 1:
        raise ValueError("--quit-after needs a positive number of frames")
    from inspector.storage.settings import absolute_path

    # Absolute before anything remembers it: settings keep it for starts from other folders.
    model_path = absolute_path(args.model) if args.model else None
    if args.trusted_key:
        from inspector.storage.signing import TRUSTED_KEYS_ENV, trust_policy

        trust_policy(args.trusted_key)  # unreadable key files: an error now, not a failed load later
        # The model worker reads the policy where it loads (settings + environment), on its own thread.
        named = [absolute_path(p) for p in args.trusted_key]
        os.environ[TRUSTED_KEYS_ENV] = os.pathsep.join(
            [p for p in os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep) if p] + named)
    recipe = None
    if args.recipe:
        from inspector.storage.recipes import load_recipe

        if args.demo:
            raise ValueError("--recipe names a model: it cannot be combined with --demo")
        recipe = load_recipe(args.recipe)  # unknown: a RecipeError naming the known ones (exit 2)
    from inspector.gui.app import run_gui

    return run_gui(model_path=model_path, source_spec=args.source, quit_after=args.quit_after,
                   db_path=args.db, demo=args.demo, recipe=recipe)
