"""Qt-free: anomaly maps (fast patch map, gradient projection), overlays and regions."""
