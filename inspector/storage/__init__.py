"""Qt-free: model files, the results database and settings."""
