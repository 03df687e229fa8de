"""``python -m inspector`` is the ``inspector`` command."""

import sys

from inspector.cli.main import main

sys.exit(main())
