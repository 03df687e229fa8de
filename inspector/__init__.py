"""Inspector: unsupervised visual anomaly detection for the inspection bench."""

__version__ = "0.1.0"
