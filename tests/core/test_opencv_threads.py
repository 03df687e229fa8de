"""The station runs OpenCV on the calling thread (its pool would wait actively on the inspection's cores)."""

from __future__ import annotations

import cv2

from inspector.core.opencv_threads import ENVIRONMENT, limit_opencv_threads


def test_limit_opencv_threads_default_and_override(monkeypatch):
    before = cv2.getNumThreads()
    try:
        monkeypatch.delenv(ENVIRONMENT, raising=False)
        assert limit_opencv_threads() == 1 and cv2.getNumThreads() == 1
        monkeypatch.setenv(ENVIRONMENT, "2")
        assert limit_opencv_threads() == 2 and cv2.getNumThreads() == 2
        monkeypatch.setenv(ENVIRONMENT, "many")
        assert limit_opencv_threads() == 1 and cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
