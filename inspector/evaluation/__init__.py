"""Qt-free: benchmarking detectors and segmenters on MVTec-AD-layout datasets."""
