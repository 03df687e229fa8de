"""The rates a threshold implies, printed the same way by ``fit``, ``calibrate`` and ``info``."""

from __future__ import annotations

from inspector.cli.common import warn


def print_rates(calibration, good_note: str = "held-out good images") -> None:
    """Threshold, expected false-reject rate and escape rate with their 95 % intervals; a warning if too few images."""
    print(f"threshold:    {calibration.threshold:.4f} raw (policy {calibration.policy}"
          + (f", target {calibration.target:g}" if calibration.target is not None else "") + ")")
    print(f"expected FRR: {calibration.frr.describe()} {good_note}")
    if calibration.escape is not None:
        print(f"escape rate:  {calibration.escape.describe()} known-bad images")
    else:
        # What users trip over: a threshold set for false rejects alone lets faint defects pass unseen.
        print("escape rate:  unknown (no defective images given); measure it, and set the threshold by F1, "
              "with `inspector calibrate MODEL --good DIR --bad DIR --policy f1`")
    if calibration.warning:
        warn(calibration.warning)
