"""QtCore-only: long-lived workers moved to QThreads."""
