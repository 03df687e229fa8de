"""Preprocessing from RGB uint8 frames to network input, recorded in every model file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class Preprocessing:
    """How a frame becomes a network input.

    The whole frame is resized (not cropped) to ``image_size`` squared so that a
    defect at the border is never cut away; gray frames are already 3-channel RGB
    by the time they arrive (see :func:`inspector.core.imageio.to_rgb8`). Pixels
    are scaled to [0, 1], then ``(x - mean) / std`` per channel: mean = std = 0.5
    maps to [-1, 1] as EfficientNet-Lite expects.
    """

    image_size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    channel_order: str = "RGB"
    resize: str = "stretch"

    def to_dict(self) -> dict:
        """JSON-ready form for the model file."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        """Inverse of :meth:`to_dict`."""
        return cls(
            image_size=int(data["image_size"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            channel_order=str(data.get("channel_order", "RGB")),
            resize=str(data.get("resize", "stretch")),
        )

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """Resize an RGB uint8 frame to the network's square input size."""
        size = self.image_size
        if image.shape[0] == size and image.shape[1] == size:
            return image
        shrinking = image.shape[0] > size or image.shape[1] > size
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    def to_tensor(self, images: Sequence[np.ndarray], device: torch.device | str = "cpu") -> torch.Tensor:
        """Stack RGB uint8 frames into a normalized ``Nx3xSxS`` float tensor."""
        batch = np.stack([self.resize_image(image) for image in images])
        tensor = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (tensor - mean) / std
