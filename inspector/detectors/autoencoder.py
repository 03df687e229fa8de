"""Convolutional autoencoders with an L2 or an SSIM residual ("ae-l2", "ae-ssim").

Bergmann, Löwe, Fauser, Sattlegger and Steger (2018), "Improving Unsupervised
Defect Segmentation by Applying Structural Similarity to Autoencoders": an
autoencoder with a dense bottleneck is trained to reconstruct good images; it
cannot reconstruct what it never saw, so the residual between an image and its
reconstruction marks defects. The per-pixel L2 residual reacts to intensity
differences, the structural dissimilarity ``1 - SSIM`` (trained with an SSIM
loss, 11x11 Gaussian window) to changes of local structure, contrast and luminance.

Inputs are RGB scaled to [0, 1] (mean 0, std 1) at 128 px by default. The image
score is the maximum of the map averaged over a window of 0.5 % of the image
(9x9 pixels at 128): chosen by measurement on the synthetic textures, where it
beat the mean of the top 1 % of pixels by about 0.07 image AUROC.

The map has two scales. A network that cannot reproduce a texture's finest
detail leaves a residual on every fine grain of a good image, and a defect that
*removes* texture (a smooth stain, a burn) then leaves less residual than the good
texture around it: the fine-scale map alone ranked such defects below chance. The
coarse scale compares the image and its reconstruction blurred by ``coarse_sigma``
pixels first, so the zero-mean fine detail cancels and what stays is a systematic
difference (a colour or brightness the network would not have produced). The coarse
scale is the squared difference of the blurred pair for both detectors: ``1 - SSIM``
discounts exactly the luminance and colour changes the coarse scale is there to see
(``coarse_residual``; model files from before it compare the blurred pair by their own
residual). Each
scale is put in units of its rarity on the validation images, ``-log10`` of the
share of good pixels with a higher value (:func:`~inspector.detectors.rarity.tail_scores`),
and the map is the larger of the two at each pixel. Rarity makes the two scales
comparable over their whole range: the fine residual of a texture the network cannot
reproduce is high on every good pixel, and divided by a high percentile alone it would
still outweigh a clear coarse-scale difference. Model files from before it divide
each scale by its 99.9th percentile on the validation images (``scale_units="percentile"``).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch

from inspector.detectors.base import register
from inspector.detectors.networks import ConvAutoencoder, check_autoencoder_size
from inspector.detectors.ssim import dssim_map
from inspector.detectors.training import (TrainedDetector, blur_images, fold_windows, map_scores, random_patches,
                                          sliding_windows, smooth_maps)
from inspector.detectors.rarity import larger_rarity, validation_tails

SSIM_WINDOW = 11
PATCH_CHUNK = 1024
MAP_SIGMA = 4.0
COARSE_SIGMA = 4.0
SCALE_QUANTILE = 0.999
SCALE_UNITS = ("rarity", "percentile")
RESIDUALS = ("l2", "ssim")


class AutoencoderDetector(TrainedDetector):
    """Autoencoder residual detector; subclasses choose the residual (``"l2"`` or ``"ssim"``).

    Args:
        device: Torch device; CUDA when available by default.
        image_size: Network input side (multiple of 16, >= 32).
        seed: Seed for initialization, the validation split and shuffles.
        epochs: Upper bound on training epochs.
        batch_size: Images per training step.
        learning_rate: Adam learning rate (weight decay 1e-5). 2e-4 as in Bergmann et al.: at 1e-3
            the network stayed at the mean image on the grass texture (both residuals).
        patience: Epochs without a better validation loss before stopping; generous, because
            training can sit near the mean image for a few hundred steps before it leaves it.
        max_seconds: Training time budget in seconds (``None``: unlimited).
        min_steps_per_epoch: Minimum optimizer steps per epoch.
        augment: Random horizontal/vertical flips during training.
        val_fraction: Held-out share of the good images (``1 / folds`` by default).
        latent_dim: Bottleneck size.
        base_channels: Width of the first convolutions.
        patch_size: Side of the square patches the autoencoder sees (a multiple of 16, at most
            ``image_size``); ``image_size`` gives the whole-image autoencoder.
        stride: Step of the sliding window at inference; ``image_size - patch_size`` must be a
            multiple of it. Overlapping reconstructions are averaged into one image.
        patches_per_image: Random crops per image and training step.
        map_sigma: Gaussian blur of the residual map, in pixels of the network input (0: none).
        coarse_sigma: Blur of image and reconstruction before the coarse-scale residual, in
            pixels of the network input (0: the fine scale alone, as model files from before it).
        scale_units: How the two scales are made comparable before their maximum is taken:
            ``"rarity"`` (``-log10`` of the share of validation pixels above the value) or
            ``"percentile"`` (divided by the 99.9th percentile on validation images, as model
            files from before the option).
        coarse_residual: The coarse scale's residual, ``"l2"`` (squared difference of the blurred
            pair) or ``"ssim"`` (``1 - SSIM`` of it).
        score: Map-to-score reduction, ``"top"``, ``"max"`` or ``"mean"``.
        score_fraction: Area fraction for the reduction.
        inference_batch: Images per forward pass when scoring.
    """

    residual: ClassVar[str] = "l2"
    networks = ("autoencoder",)

    def __init__(self, device: torch.device | str | None = None, image_size: int = 128, seed: int = 0,
                 epochs: int = 100, batch_size: int = 16, learning_rate: float = 2e-4, patience: int = 20,
                 max_seconds: float | None = 420.0, min_steps_per_epoch: int = 20, augment: bool = True,
                 val_fraction: float | None = None, latent_dim: int = 100, base_channels: int = 32,
                 patch_size: int = 32, stride: int = 8, patches_per_image: int = 8, map_sigma: float = MAP_SIGMA,
                 coarse_sigma: float = COARSE_SIGMA, scale_units: str = "rarity",
                 coarse_residual: str = "l2", score: str = "max", score_fraction: float = 0.005,
                 inference_batch: int = 32) -> None:
        coarse_residual = str(coarse_residual)
        if coarse_residual not in RESIDUALS:
            raise ValueError(f"unknown coarse_residual {coarse_residual!r}; choose one of {', '.join(RESIDUALS)}")
        super().__init__(device, image_size, seed, epochs, batch_size, learning_rate, patience, max_seconds,
                         min_steps_per_epoch, augment, val_fraction, score, score_fraction, inference_batch,
                         mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                         latent_dim=int(latent_dim), base_channels=int(base_channels), patch_size=int(patch_size),
                         stride=int(stride), patches_per_image=int(patches_per_image), map_sigma=float(map_sigma),
                         coarse_sigma=float(coarse_sigma), scale_units=str(scale_units),
                         coarse_residual=coarse_residual)
        check_autoencoder_size(int(image_size))
        check_autoencoder_size(int(patch_size))
        if patch_size > image_size or stride < 1 or (image_size - patch_size) % stride:
            raise ValueError(f"the patch size ({patch_size}) must fit the image size ({image_size}) and "
                             f"image_size - patch_size must be a multiple of the stride ({stride})")
        if patches_per_image < 1 or map_sigma < 0 or coarse_sigma < 0:
            raise ValueError("patches_per_image must be positive, map_sigma and coarse_sigma not negative")
        if scale_units not in SCALE_UNITS:
            raise ValueError(f"unknown scale_units {scale_units!r}; choose one of {', '.join(SCALE_UNITS)}")
        self.scale_units = str(scale_units)
        self.coarse_residual = coarse_residual
        self.map_sigma = float(map_sigma)
        self.coarse_sigma = float(coarse_sigma)
        self.map_scales: torch.Tensor | None = None  # (fine, coarse) 99.9th percentiles on validation images
        self.map_tails: torch.Tensor | None = None  # (2, L) tail tables of the two scales on validation images
        self.latent_dim = int(latent_dim)
        self.base_channels = int(base_channels)
        self.patch_size, self.stride = int(patch_size), int(stride)
        self.patches_per_image = int(patches_per_image)

    @property
    def whole_image(self) -> bool:
        """Whether the autoencoder sees the whole frame (no patches)."""
        return self.patch_size == self.preprocessing.image_size

    def _build(self) -> None:
        self.autoencoder = ConvAutoencoder(self.patch_size, self.latent_dim, self.base_channels).to(self.device)

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device):
        """Rebuild from a model file; files from before patches hold a whole-image autoencoder,
        files from before the coarse scale a fine-scale map alone, files from before
        ``scale_units`` scales divided by their percentiles, files from before ``coarse_residual``
        a coarse scale by the training residual."""
        options = dict(config["options"])
        options.setdefault("patch_size", options["image_size"])
        options.setdefault("stride", 1)
        options.setdefault("coarse_sigma", 0.0)
        options.setdefault("scale_units", "percentile")
        options.setdefault("coarse_residual", cls.residual)
        detector = super().from_state({**config, "options": options}, tensors, device)
        if detector.coarse_sigma > 0 and detector.scale_units == "percentile":
            detector.map_scales = tensors["map_scales"].double().to(detector.device)
        elif detector.coarse_sigma > 0:
            detector.map_tails = tensors["map_tails"].double().to(detector.device)
        return detector

    def tensors(self) -> dict[str, torch.Tensor]:
        """The autoencoder's weights and, with two scales, the scales' validation statistics."""
        out = super().tensors()
        if self.coarse_sigma > 0 and self.scale_units == "percentile":
            out["map_scales"] = self.map_scales.float().cpu()
        elif self.coarse_sigma > 0:
            out["map_tails"] = self.map_tails.float().cpu()
        return out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of preprocessed frames: the average of the overlapping window reconstructions."""
        if self.whole_image:
            return self.autoencoder(x)
        windows = sliding_windows(x, self.patch_size, self.stride)
        out = torch.cat([self.autoencoder(chunk) for chunk in windows.split(PATCH_CHUNK)])
        return fold_windows(out, x.shape[0], x.shape[-1], self.stride)

    def residual_maps(self, x: torch.Tensor, reconstruction: torch.Tensor, residual: str | None = None) -> torch.Tensor:
        """Per-pixel residual ``(N, S, S)``: squared error summed over channels, or ``1 - SSIM``
        (``residual``: ``"l2"`` or ``"ssim"``, the detector's training residual by default)."""
        if (residual or self.residual) == "ssim":
            return dssim_map(x, reconstruction, SSIM_WINDOW)
        return (x - reconstruction).pow(2).sum(dim=1)

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean residual of a batch of patches (or whole frames) and their reconstructions."""
        return self.residual_maps(x, self.autoencoder(x)).mean()

    def _trainer(self, train_x: torch.Tensor, val_x: torch.Tensor,
                 generator: torch.Generator) -> tuple[Callable[[torch.Tensor], float], Callable[[], float]]:
        optimizer = torch.optim.Adam(self.autoencoder.parameters(), lr=self.settings.learning_rate,
                                     weight_decay=1e-5)

        def step(batch: torch.Tensor) -> float:
            if not self.whole_image:
                batch = random_patches(batch, self.patches_per_image, self.patch_size, generator)
            optimizer.zero_grad(set_to_none=True)
            loss = self._loss(batch)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        def validate() -> float:
            with torch.no_grad():
                losses = [self._frame_residuals(val_x[i:i + self.inference_batch]).mean() *
                          len(val_x[i:i + self.inference_batch]) for i in range(0, len(val_x), self.inference_batch)]
            return float(torch.stack(losses).sum() / len(val_x))

        return step, validate

    def _frame_residuals(self, x: torch.Tensor) -> torch.Tensor:
        """Residual maps ``(N, S, S)`` of preprocessed frames against their reconstruction."""
        return self.residual_maps(x, self.reconstruct(x))

    def _scale_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fine- and coarse-scale residual maps ``(N, S, S)``, each blurred by ``map_sigma``
        (the coarse one ``None`` with ``coarse_sigma`` 0)."""
        reconstruction = self.reconstruct(x)
        fine = smooth_maps(self.residual_maps(x, reconstruction), self.map_sigma)
        if self.coarse_sigma <= 0:
            return fine, None
        coarse = self.residual_maps(blur_images(x, self.coarse_sigma), blur_images(reconstruction, self.coarse_sigma),
                                    self.coarse_residual)
        return fine, smooth_maps(coarse, self.map_sigma)

    def _after_training(self, val_x: torch.Tensor) -> None:
        """The two scales' statistics on the validation images (what makes them comparable):
        their tail tables, or their 99.9th percentiles with ``scale_units="percentile"``."""
        if self.coarse_sigma <= 0:
            return
        if self.scale_units == "rarity":
            self.map_tails = validation_tails(self._scale_maps, val_x, self.inference_batch).to(self.device)
            return
        parts = [self._scale_maps(val_x[i:i + self.inference_batch]) for i in range(0, len(val_x), self.inference_batch)]
        values = [torch.cat([p[k] for p in parts]) for k in (0, 1)]
        scales = [_quantile(v, SCALE_QUANTILE) for v in values]
        self.map_scales = torch.tensor(scales, dtype=torch.float64, device=self.device).clamp_min(1e-12)

    def anomaly_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The detector's map: the fine-scale residual blurred by ``map_sigma`` or, with a coarse
        scale, the larger of the two scales, each in units of its rarity on validation images
        (or of its validation percentile, see ``scale_units``)."""
        fine, coarse = self._scale_maps(x)
        if coarse is None:
            return fine
        if self.scale_units == "rarity":
            return larger_rarity(fine, coarse, self.map_tails)
        scales = self.map_scales.to(fine.dtype)
        return torch.maximum(fine / scales[0], coarse / scales[1])

    @torch.no_grad()
    def _scores_and_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.anomaly_maps(x)
        return map_scores(maps, self.score_method, self.score_fraction), maps

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        """Score of preprocessed inputs, differentiable with respect to ``x``."""
        return map_scores(self.anomaly_maps(x), self.score_method, self.score_fraction)


@register
class L2AutoencoderDetector(AutoencoderDetector):
    """Autoencoder trained with and scored by the per-pixel squared error."""

    kind = "ae-l2"
    residual = "l2"


@register
class SSIMAutoencoderDetector(AutoencoderDetector):
    """Autoencoder trained with and scored by the structural dissimilarity ``1 - SSIM`` (its fine scale;
    the coarse scale compares the blurred pair by their squared difference)."""

    kind = "ae-ssim"
    residual = "ssim"


def _quantile(values: torch.Tensor, q: float) -> float:
    """The ``q`` quantile of a tensor's values (a strided sample above torch.quantile's size limit)."""
    flat = values.detach().flatten().double()
    step = max(1, flat.numel() // 4_000_000)
    return float(torch.quantile(flat[::step], q))

