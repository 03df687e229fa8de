"""Qt-free: frame sources (camera, video, stream, folder, hot folder)."""
