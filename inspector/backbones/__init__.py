"""Qt-free: EfficientNet construction, offline pretrained weights, preprocessing."""
