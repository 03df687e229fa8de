"""Entry script of the frozen app: the same as the ``inspector`` console script."""

import multiprocessing
import sys

from inspector.cli.main import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
