"""Qt-free: anomaly detectors behind one interface (see :mod:`inspector.detectors.base`)."""
