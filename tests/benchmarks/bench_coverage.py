"""Coverage of the shown false-reject intervals on real images, and the narrow-slice drift check.

    python tests/benchmarks/bench_coverage.py /work/data/suite --categories elpv-mono elpv-poly \
        --references 10 20 30 50 100 --splits 20

For each category, the good images (train/good and test/good) form one pool; the
backbone runs once over it. Each split draws the references at random, fits the
default detector, calibrates at each target rate, and measures the false-reject
rate on every other good image. Prints, per references count and target, how
often the measured rate fell inside the shown 95 % interval. Then fits on the
first N files by name (a narrow slice of production) and runs the drift test on
30 other good images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from inspector.core.imageio import read_image
from inspector.core.malloc_tuning import tune_malloc
from inspector.datasets.mvtec import find_categories, load_category
from inspector.evaluation.coverage import ExtractedPool, coverage_table, narrow_slice, random_splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--categories", nargs="*")
    parser.add_argument("--references", nargs="+", type=int, default=[10, 20, 30, 50, 100])
    parser.add_argument("--targets", nargs="+", type=float, default=[0.01, 0.05, 0.10])
    parser.add_argument("--splits", type=int, default=20)
    parser.add_argument("--narrow", type=int, default=30, help="references of the narrow-slice check")
    parser.add_argument("--cross-conformal", action="store_true",
                        help="also measure the cross-conformal rule (unseen images scored by the fold models)")
    parser.add_argument("--unseen-limit", type=int, help="measure on at most N unseen images per split")
    parser.add_argument("--no-narrow", action="store_true", help="skip the narrow-slice check")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    tune_malloc()
    report = {}
    for path in find_categories(args.root):
        if args.categories and path.name not in args.categories:
            continue
        category = load_category(path)
        good = sorted(list(category.train_good) + [t.path for t in category.test if t.label == 0],
                      key=lambda p: p.name)
        started = time.perf_counter()
        pool = ExtractedPool([read_image(p) for p in good])
        print(f"{category.name}: {len(good)} good images, features in {time.perf_counter() - started:.0f} s",
              file=sys.stderr, flush=True)
        outcomes = []
        for references in args.references:
            outcomes += random_splits(pool, references, args.splits, args.targets, seed=references,
                                      cross_conformal=args.cross_conformal, unseen_limit=args.unseen_limit)
            print(f"  {references} references done", file=sys.stderr, flush=True)
        table = coverage_table(outcomes)
        slice_result = None if args.no_narrow else narrow_slice(pool, args.narrow)
        report[category.name] = {"coverage": table, "narrow_slice": slice_result}
        print(f"\n{category.name} ({len(good)} good images; 95% intervals)")
        cross = "  cross-conformal: coverage measured" if args.cross_conformal else ""
        print(f"{'refs':>5} {'target':>7} {'splits':>6} {'coverage':>9} {'shown':>7} {'interval (mean)':>17} "
              f"{'measured':>9}{cross}")
        for row in table:
            low, high = row["mean_interval"]
            extra = (f"  {row['coverage_cross']:>9.0%} {row['mean_measured_cross']:>8.1%}"
                     if "coverage_cross" in row else "")
            print(f"{row['references']:>5} {row['target']:>7.0%} {row['splits']:>6} {row['coverage']:>9.0%} "
                  f"{row['mean_shown']:>7.1%} {low:>8.1%}-{high:<8.1%} {row['mean_measured']:>9.1%}{extra}")
        if slice_result is None:
            continue
        drift = slice_result["drift"]
        print(f"narrow slice (first {args.narrow} files): shown FRR {slice_result['shown']['rate']:.1%} "
              f"[{slice_result['shown']['interval'][0]:.1%}, {slice_result['shown']['interval'][1]:.1%}], "
              f"measured {slice_result['measured_frr']:.1%} of {slice_result['unseen']}; "
              f"drift on 30 parts: {drift['drift']} ({drift['message']})")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
