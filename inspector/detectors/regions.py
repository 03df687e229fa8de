"""Inspection and ignore regions: which pixels of a frame a model judges.

A region mask is a picture at the model's input size: white (True) is
inspected, black (False) is ignored (a label, a serial number, a fixture).

How it is applied, for every detector alike: the ignored pixels of each frame
(after the frame is stretched to the input square, as the backbone sees it) are
replaced by the **mean reference image** before the forward pass, at fit time
and at scoring time. An ignored region therefore looks the same in every frame
and in every reference, so nothing that happens there can raise any evidence
(the pooled global Gaussian, the per-position patch Gaussian or the memory
bank), whereas masking only the patch grids would leave the pooled global
evidence, which sees the whole frame, free to react. The fast map is then set to
zero outside the inspected region, so an overlay never points into it.

No Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

TENSOR_INSPECTED = "regions.inspected"
TENSOR_FILL = "regions.fill"


class RegionMaskError(ValueError):
    """A mask picture that cannot be used (unreadable, empty, nothing inspected)."""


def mask_from_image(image: np.ndarray, size: int) -> np.ndarray:
    """A boolean ``size x size`` mask from a mask picture (white inspected, black ignored).

    Args:
        image: The mask picture, gray or RGB, any size (it is stretched like a frame).
        size: The model's input size.

    Raises:
        RegionMaskError: when nothing would be inspected.
    """
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[..., :3].mean(axis=2)
    resized = cv2.resize(array.astype(np.float32), (size, size), interpolation=cv2.INTER_NEAREST)
    inspected = resized >= (127.5 if array.max() > 1 else 0.5)
    if not inspected.any():
        raise RegionMaskError("the mask is black everywhere: nothing would be inspected (white = inspected)")
    return inspected


@dataclass(frozen=True)
class RegionMask:
    """Inspected pixels of the model input square and the picture that fills the ignored ones.

    Attributes:
        inspected: ``S x S`` bool, True where the model looks.
        fill: ``S x S x 3`` uint8, the mean reference image (what ignored pixels become).
    """

    inspected: np.ndarray
    fill: np.ndarray

    @property
    def size(self) -> int:
        """The model input size the mask belongs to."""
        return int(self.inspected.shape[0])

    @property
    def ignored_fraction(self) -> float:
        """Share of the input square that is ignored."""
        return float(1.0 - self.inspected.mean())

    @classmethod
    def fitted(cls, inspected: np.ndarray, references: Sequence[np.ndarray], resize) -> "RegionMask":
        """The mask with its fill: the mean of the references stretched to the input square.

        Args:
            inspected: ``S x S`` bool mask (:func:`mask_from_image`).
            references: The good reference images (RGB uint8).
            resize: ``image -> S x S x 3`` (the detector's ``preprocessing.resize_image``).
        """
        total = np.zeros((*inspected.shape, 3), dtype=np.float64)
        for image in references:
            total += resize(image)
        fill = np.clip(np.rint(total / max(len(references), 1)), 0, 255).astype(np.uint8)
        return cls(np.asarray(inspected, dtype=bool), fill)

    def apply(self, images: Sequence[np.ndarray], resize) -> list[np.ndarray]:
        """The images as the model sees them: stretched to the input square, ignored pixels filled."""
        out = []
        for image in images:
            square = np.array(resize(image), copy=True)
            square[~self.inspected] = self.fill[~self.inspected]
            out.append(square)
        return out

    def frame_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """The inspected pixels in a frame's own ``H x W`` geometry (stretched back, nearest)."""
        height, width = int(shape[0]), int(shape[1])
        if (height, width) == self.inspected.shape:
            return self.inspected
        resized = cv2.resize(self.inspected.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        return resized.astype(bool)

    def mask_map(self, values: np.ndarray) -> np.ndarray:
        """A map (``H x W``, any geometry) with zeros outside the inspected region."""
        out = np.array(values, dtype=np.float32, copy=True)
        out[~self.frame_mask(out.shape)] = 0.0
        return out

    def metadata(self) -> dict:
        """The JSON flag stored in the model file (the pixels are tensors)."""
        return {"enabled": True, "size": self.size, "ignored_fraction": round(self.ignored_fraction, 4),
                "applied": "ignored pixels replaced by the mean reference image before the backbone; "
                           "maps zeroed outside the inspected region"}

    def tensors(self) -> dict[str, torch.Tensor]:
        """The mask and its fill as uint8 tensors for the model file."""
        return {TENSOR_INSPECTED: torch.from_numpy(self.inspected.astype(np.uint8)),
                TENSOR_FILL: torch.from_numpy(np.ascontiguousarray(self.fill))}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> "RegionMask | None":
        """The mask of a model file's tensors (``None`` when it has none)."""
        if TENSOR_INSPECTED not in tensors:
            return None
        inspected = tensors[TENSOR_INSPECTED].cpu().numpy().astype(bool)
        fill = tensors[TENSOR_FILL].cpu().numpy().astype(np.uint8)
        return cls(inspected, fill)


def split_tensors(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(detector tensors, region tensors)`` of a model file."""
    own = {k: v for k, v in tensors.items() if not k.startswith("regions.")}
    return own, {k: v for k, v in tensors.items() if k.startswith("regions.")}
