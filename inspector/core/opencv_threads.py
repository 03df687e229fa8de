"""Keep OpenCV's own thread pool out of the station's way.

OpenCV parallelises a resize or a colour conversion over a pool of its own
threads. On the station's images (a few hundred pixels a side) the work per call
is too small to gain from that, and the pool's threads wait actively for the next
call, on the same cores as the inspection, the window and the gradient maps
(README "Station responsiveness": about 1.1 ms of CPU a frame with fast maps on,
for no gain). The station therefore runs OpenCV on the calling thread.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

ENVIRONMENT = "INSPECTOR_OPENCV_THREADS"
"""Set to a number to give OpenCV that many threads instead (0: OpenCV's own choice)."""


def limit_opencv_threads(default: int = 1) -> int:
    """Set OpenCV's thread count for this process (``$INSPECTOR_OPENCV_THREADS`` or ``default``); returns it."""
    import cv2

    wanted = os.environ.get(ENVIRONMENT, "").strip()
    try:
        threads = int(wanted) if wanted else int(default)
    except ValueError:
        logger.warning("%s=%r is not a number; OpenCV keeps %d thread(s)", ENVIRONMENT, wanted, default)
        threads = int(default)
    cv2.setNumThreads(threads if threads > 0 else -1)
    return threads
