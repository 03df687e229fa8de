"""PySide6 station: a thin layer that only shows what the workers hand it."""
