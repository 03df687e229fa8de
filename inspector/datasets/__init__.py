"""Qt-free: MVTec-AD layout reading and the regenerable synthetic texture dataset."""
