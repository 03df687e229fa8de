"""Qt-free: held-out score statistics, threshold policies and expected error rates."""
