"""Keep the CPU thread pools from spinning against each other and against other programs.

PyTorch's OpenMP threads busy-wait after every parallel region by default, and
NumPy's OpenBLAS runs small matrix products on every core with its own spinning
pool. A fit alternates between the two, and a station runs detection, the camera
and the window side by side, so on a bench PC with any other load the threads
spin for cores someone else needs (README, "Fit time": the gradient calibration of a
fit went from seconds to most of a minute with one other busy program). Two
process-wide settings avoid it:

- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads sleep when they have no work. It is
  read once, when PyTorch loads its OpenMP runtime, so :func:`tune_threads` must run
  before ``torch`` is imported (the ``inspector`` command calls it first thing);
- one thread for the OpenBLAS libraries NumPy, SciPy and OpenCV bring
  (``OPENBLAS_NUM_THREADS=1`` for those loaded later, threadpoolctl for those already
  loaded): the products they compute here are small; PyTorch's own math is not affected.

Each setting is left alone when the user set it (``OMP_WAIT_POLICY``,
``OPENBLAS_NUM_THREADS``) or when ``INSPECTOR_THREAD_TUNING=0``.
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"
BLAS_THREADS = 1


def tune_threads() -> dict[str, bool]:
    """Apply both settings where allowed; returns which were applied."""
    applied = {"omp_wait_policy": False, "blas_threads": False}
    if os.environ.get("INSPECTOR_THREAD_TUNING", "1") == "0":
        return applied
    if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
        applied["omp_wait_policy"] = True
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        os.environ["OPENBLAS_NUM_THREADS"] = str(BLAS_THREADS)
        applied["blas_threads"] = True
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # threadpoolctl comes with scikit-learn; without it, nothing to limit
            return applied
        import numpy  # noqa: F401  (load NumPy's BLAS so that the limit reaches it)

        threadpool_limits(limits=BLAS_THREADS, user_api="blas")
    return applied
