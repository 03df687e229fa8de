"""The exit codes of every ``inspector`` command, in one place (documented in README)."""

EXIT_OK = 0
"""Success, whatever the verdicts."""
EXIT_INTERNAL = 1
"""An unexpected error (a bug): one line on stderr, the traceback with ``-v``."""
EXIT_USAGE = 2
"""A usage or input error: bad arguments, no readable images, a source that cannot be opened."""
EXIT_MODEL = 3
"""The model file or backbone cannot be used (corrupt, wrong format, unsigned where signatures are required)."""
EXIT_NOT_RECORDED = 4
"""Some decisions could not be written to the results database; they wait in the journal."""
EXIT_CANCELLED = 130
"""Cancelled with Ctrl-C."""
