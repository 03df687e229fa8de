"""Qt-free: image- and pixel-level evaluation metrics (AUROC, F1, AUPRO)."""
