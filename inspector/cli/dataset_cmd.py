"""``inspector make-dataset``: regenerate the synthetic textures-with-defects dataset."""

from __future__ import annotations

HELP = "generate the MVTec-AD-layout dataset of real textures with drawn defects (deterministic)"


def add_arguments(parser) -> None:
    """Arguments of the generator."""
    from inspector.datasets.synthetic import add_arguments as generator_arguments

    generator_arguments(parser)


def run(args) -> int:
    """Generate the dataset."""
    from inspector.datasets.synthetic import run as generate

    return generate(args)
