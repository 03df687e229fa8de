"""Reports of decisions, written without Qt: the batch review's CSV and HTML exports."""
