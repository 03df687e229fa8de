"""Qt-free core: immutable records, the inspection pipeline and the threshold policy."""
