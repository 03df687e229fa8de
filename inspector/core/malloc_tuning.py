"""Keep glibc from handing freed memory back to the system after every layer.

Batched CPU inference allocates and frees large activation buffers per layer;
with glibc's defaults the heap top is trimmed and re-grown each time, and
throughput swings widely. Raising the trim threshold and top pad (the same as
the ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_`` environment variables) keeps
it steady. A no-op off glibc or when the user set those variables.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
DEFAULT_BYTES = 256 * 1024 * 1024


def tune_malloc(trim_bytes: int = DEFAULT_BYTES, pad_bytes: int = DEFAULT_BYTES) -> bool:
    """Apply the tuning; returns whether it was applied."""
    if not sys.platform.startswith("linux"):
        return False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_TOP_PAD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_TRIM_THRESHOLD, int(trim_bytes)) == 1
    ok = mallopt(M_TOP_PAD, int(pad_bytes)) == 1 and ok
    # Large buffers go through mmap by default and are unmapped on free; keep them on the heap.
    ok = mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024) == 1 and ok
    return ok
