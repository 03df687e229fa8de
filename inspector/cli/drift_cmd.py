"""``inspector drift``: do these parts look like the model's references?"""

from __future__ import annotations

import json

from inspector.cli.common import add_device, add_quiet, load_folder, load_model, open_fraction
from inspector.cli.progress_bar import progress_bar

HELP = "test whether images of production parts come from the population the model was calibrated on"


def add_arguments(parser) -> None:
    """Arguments of ``inspector drift``."""
    from inspector.cli.sign_cmd import add_trusted_key

    add_trusted_key(parser)
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="images or folders of recent production parts")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--alpha", type=open_fraction, default=None, help="significance level of the test (default 0.01)")
    add_device(parser)
    add_quiet(parser)


def run(args) -> int:
    """Score the images and compare them with the stored held-out good scores. Exit 0 whatever the verdict."""
    from inspector.calibration.drift import ALPHA, drift_test

    alpha = ALPHA if args.alpha is None else args.alpha
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha must be between 0 and 1, got {alpha}")
    model = load_model(args.model, args.device, args=args)
    with progress_bar(args.quiet, "drift") as progress:
        loaded = load_folder(args.paths, progress, "production")
        scores = model.score_images(loaded.images)
    cal = model.calibration
    report = drift_test(cal.good_scores, cal.threshold, scores, alpha=alpha)
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2))
        return 0
    verdict = {True: "true", False: "false", None: "undecided"}[report.drift]
    print(f"drift: {verdict}")
    print(report.message)
    print(f"reject test: {report.rejected} of {report.frames} above the threshold, "
          f"{report.expected_reject_rate:.1%} expected, p = {report.reject_p_value:.3g}")
    if report.shift_p_value is not None:
        print(f"shift test:  P(recent good > held-out good) = {report.shift_statistic:.2f}, p = {report.shift_p_value:.3g}")
    return 0
