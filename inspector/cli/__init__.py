"""The ``inspector`` command line: everything the station does, headless."""
