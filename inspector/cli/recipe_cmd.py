"""``inspector recipe``: named products (model, threshold override, source, maps); see :mod:`inspector.storage.recipes`."""

from __future__ import annotations

import json
import sys

HELP = "add, list, show or remove recipes: a product's model, threshold override, source and map mode"


def add_arguments(parser) -> None:
    """Arguments of ``inspector recipe``."""
    from inspector.storage.recipes import MAP_MODES

    sub = parser.add_subparsers(dest="recipe_action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="add or replace a recipe")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--model", metavar="MODEL", required=True, help="model file (stored as an absolute path)")
    add.add_argument("--threshold", type=float, metavar="T", help="raw threshold override (default: the model's)")
    add.add_argument("--source", metavar="SPEC", help="source spec, e.g. camera:0 or folder:PATH")
    add.add_argument("--maps", choices=MAP_MODES, help="segmentation mode")
    sub.add_parser("list", help="list the recipes, one JSON object a line")
    show = sub.add_parser("show", help="print one recipe as JSON")
    show.add_argument("name", metavar="NAME")
    remove = sub.add_parser("remove", help="delete a recipe")
    remove.add_argument("name", metavar="NAME")


def run(args) -> int:
    """Carry out the action; recipe errors are input errors (exit 2)."""
    from dataclasses import asdict

    from inspector.storage import recipes

    action = args.recipe_action
    if action == "add":
        recipe = recipes.make_recipe(args.name, args.model, args.threshold, args.source, args.maps)
        path = recipes.save_recipe(recipe)
        print(f"recipe {recipe.name} saved to {path}", file=sys.stderr)
    elif action == "list":
        for name in recipes.list_recipes():
            try:
                print(json.dumps(asdict(recipes.load_recipe(name))))
            except recipes.RecipeError as exc:
                print(f"inspector: warning: {exc}", file=sys.stderr)
    elif action == "show":
        print(json.dumps(asdict(recipes.load_recipe(args.name)), indent=2))
    elif action == "remove":
        path = recipes.remove_recipe(args.name)
        print(f"recipe {args.name} removed ({path})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m inspector.cli.recipe_cmd ...``: the command on its own (until it is registered in main)."""
    import argparse

    from inspector.storage.recipes import RecipeError

    parser = argparse.ArgumentParser(prog="inspector recipe", description=HELP)
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except RecipeError as exc:
        print(f"inspector: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
