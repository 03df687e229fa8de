"""Patch VAE with a heteroscedastic decoder, scored by the unregularized M_VAE ("vae").

Matsubara, Tachibana and Uehara (2018), "Anomaly detection for industrial
products using an unregularized anomaly score from deep generative models"
(JSAI): a VAE whose decoder predicts a mean and a variance per pixel is trained
on patches of good images (Gaussian likelihood + KL). The anomaly score keeps only
the data-fit term of the negative log-likelihood,

    M_VAE(x) = sum over pixels of 0.5 * (x - mu(x))^2 / sigma(x)^2,

dropping the KL and log-variance terms, which reward or punish a patch for being
simple or busy rather than for being unusual.

A heatmap comes from sliding the patch window over the frame (``F.unfold``),
scoring every patch in batches, and averaging each pixel's M_VAE terms over the
windows that cover it (``F.fold``). Inputs are RGB in [0, 1] at 128 px, patches
are 32 px with a stride of 16. The image score is the maximum of the map averaged
over a window of 0.5 % of the image (chosen by measurement, as for the autoencoders).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from inspector.detectors.base import register
from inspector.detectors.networks import PatchVAE, check_size
from inspector.detectors.rarity import larger_rarity, validation_tails
from inspector.detectors.training import (TrainedDetector, blur_images, fold_windows, map_scores,  # noqa: F401
                                          random_patches, sliding_windows, smooth_maps)

PATCH_CHUNK = 512
MAP_SIGMA = 4.0
COARSE_SIGMA = 2.0
"""Blur of the coarse scale's pair in pixels; 0: the M_VAE map alone. 2 was chosen on the tuning
halves of the suite's mask sets (README, "The detectors from the literature")."""


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Per-element negative log-likelihood of ``x`` under N(mean, exp(log_var)), without the constant."""
    return 0.5 * ((x - mean).pow(2) * torch.exp(-log_var) + log_var)


def kl_divergence(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, 1)) per sample, summed over latent dimensions."""
    return -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(dim=1)


@register
class VAEDetector(TrainedDetector):
    """Heteroscedastic patch VAE; map and score from M_VAE.

    Args:
        device: Torch device; CUDA when available by default.
        image_size: Side the frame is resized to before patches are taken.
        seed: Seed for initialization, the validation split, shuffles, crops and noise.
        epochs, batch_size, learning_rate, patience, max_seconds, min_steps_per_epoch:
            Training settings (:class:`~inspector.detectors.training.TrainingSettings`);
            ``batch_size`` counts images, each giving ``patches_per_image`` crops.
        augment: Random horizontal/vertical flips during training.
        val_fraction: Held-out share of the good images (``1 / folds`` by default).
        patch_size: Side of the VAE's square patches (4 times a power of two).
        stride: Step of the sliding window; ``image_size - patch_size`` must be a multiple of it.
        patches_per_image: Random crops per image and training step.
        latent_dim: Size of the latent code.
        base_channels: Width of the first encoder layer.
        min_log_var: Soft floor of the decoder's log-variance (sigma >= ~0.011 in [0, 1] units).
        map_sigma: Gaussian blur of the M_VAE map, in pixels of the network input (0: none).
        coarse_sigma: With a positive value, a second, coarse scale: the squared difference of the
            frame and its mean reconstruction, both blurred by this many pixels, and the map is the
            larger of the two scales, each in units of its rarity on the validation images (as the
            autoencoders' two-scale map); 0: the M_VAE map alone.
        score: Map-to-score reduction, ``"top"``, ``"max"`` or ``"mean"``.
        score_fraction: Area fraction for the reduction.
        inference_batch: Images per scoring pass.
    """

    kind = "vae"
    networks = ("vae",)

    def __init__(self, device: torch.device | str | None = None, image_size: int = 128, seed: int = 0,
                 epochs: int = 100, batch_size: int = 16, learning_rate: float = 1e-3, patience: int = 8,
                 max_seconds: float | None = 420.0, min_steps_per_epoch: int = 20, augment: bool = True,
                 val_fraction: float | None = None, patch_size: int = 32, stride: int = 16,
                 patches_per_image: int = 4, latent_dim: int = 32, base_channels: int = 32,
                 min_log_var: float = -9.0, map_sigma: float = MAP_SIGMA, score: str = "max", score_fraction: float = 0.005,
                 inference_batch: int = 16, coarse_sigma: float = COARSE_SIGMA) -> None:
        super().__init__(device, image_size, seed, epochs, batch_size, learning_rate, patience, max_seconds,
                         min_steps_per_epoch, augment, val_fraction, score, score_fraction, inference_batch,
                         mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), patch_size=int(patch_size), stride=int(stride),
                         patches_per_image=int(patches_per_image), latent_dim=int(latent_dim),
                         base_channels=int(base_channels), min_log_var=float(min_log_var),
                         map_sigma=float(map_sigma), coarse_sigma=float(coarse_sigma))
        if not 0 < patch_size <= image_size or stride < 1 or (image_size - patch_size) % stride:
            raise ValueError(f"the patch size ({patch_size}) must fit the image size ({image_size}) and "
                             f"image_size - patch_size must be a multiple of the stride ({stride})")
        if patches_per_image < 1 or map_sigma < 0 or coarse_sigma < 0:
            raise ValueError("patches_per_image must be positive, map_sigma and coarse_sigma not negative")
        self.map_sigma = float(map_sigma)
        self.coarse_sigma = float(coarse_sigma)
        self.map_tails: torch.Tensor | None = None  # (2, L) tail tables of the two scales on validation images
        check_size(int(patch_size), 4, "the VAE's patch")
        self.patch_size, self.stride = int(patch_size), int(stride)
        self.patches_per_image = int(patches_per_image)
        self.latent_dim, self.base_channels = int(latent_dim), int(base_channels)
        self.min_log_var = float(min_log_var)

    def _build(self) -> None:
        self.vae = PatchVAE(self.patch_size, self.latent_dim, self.base_channels,
                            min_log_var=self.min_log_var).to(self.device)

    def _loss(self, patches: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """Negative ELBO per pixel (likelihood without its constant, plus KL)."""
        mean, log_var, mu_z, log_var_z = self.vae(patches, noise)
        nll = gaussian_nll(patches, mean, log_var).flatten(1).sum(dim=1)
        return ((nll + kl_divergence(mu_z, log_var_z)) / patches[0].numel()).mean()

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """All sliding-window patches of ``(N, C, S, S)``: ``(N * L, C, P, P)``, image-major."""
        return sliding_windows(x, self.patch_size, self.stride)

    def _trainer(self, train_x: torch.Tensor, val_x: torch.Tensor,
                 generator: torch.Generator) -> tuple[Callable[[torch.Tensor], float], Callable[[], float]]:
        optimizer = torch.optim.Adam(self.vae.parameters(), lr=self.settings.learning_rate)
        val_patches = self._windows(val_x)

        def step(batch: torch.Tensor) -> float:
            patches = random_patches(batch, self.patches_per_image, self.patch_size, generator)
            noise = torch.randn(patches.shape[0], self.latent_dim, generator=generator).to(self.device)
            optimizer.zero_grad(set_to_none=True)
            loss = self._loss(patches, noise)
            loss.backward()
            optimizer.step()
            return float(loss.detach())

        def validate() -> float:
            with torch.no_grad():
                total = sum(float(self._loss(chunk, None)) * len(chunk) for chunk in val_patches.split(PATCH_CHUNK))
            return total / len(val_patches)

        return step, validate

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device):
        """Rebuild from a model file; files from before ``coarse_sigma`` draw the M_VAE map alone."""
        options = {"coarse_sigma": 0.0, **config["options"]}
        detector = super().from_state({**config, "options": options}, tensors, device)
        if detector.coarse_sigma > 0:
            detector.map_tails = tensors["map_tails"].double().to(detector.device)
        return detector

    def tensors(self) -> dict[str, torch.Tensor]:
        """The VAE's weights and, with two scales, their tail tables."""
        out = super().tensors()
        if self.coarse_sigma > 0:
            out["map_tails"] = self.map_tails.float().cpu()
        return out

    def _scale_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The M_VAE map ``(N, S, S)`` (per-pixel terms averaged over the sliding windows covering
        each pixel) and, with ``coarse_sigma``, the coarse scale's map, both blurred by ``map_sigma``."""
        n, _, size, _ = x.shape
        terms, means = [], []
        for chunk in self._windows(x).split(PATCH_CHUNK):
            mean, log_var, _, _ = self.vae(chunk)
            terms.append((0.5 * (chunk - mean).pow(2) * torch.exp(-log_var)).sum(dim=1))
            if self.coarse_sigma > 0:
                means.append(mean)
        per_window = torch.cat(terms).reshape(n, -1, self.patch_size ** 2).transpose(1, 2)
        summed = F.fold(per_window, size, self.patch_size, stride=self.stride)
        covered = F.fold(torch.ones_like(per_window[:1]), size, self.patch_size, stride=self.stride)
        fine = smooth_maps((summed / covered)[:, 0], self.map_sigma)
        if self.coarse_sigma <= 0:
            return fine, None
        reconstruction = fold_windows(torch.cat(means), n, size, self.stride)
        coarse = (blur_images(x, self.coarse_sigma) - blur_images(reconstruction, self.coarse_sigma)).pow(2).sum(dim=1)
        return fine, smooth_maps(coarse, self.map_sigma)

    def _after_training(self, val_x: torch.Tensor) -> None:
        """With two scales, their tail tables on the validation images (what makes them comparable)."""
        if self.coarse_sigma > 0:
            self.map_tails = validation_tails(self._scale_maps, val_x, self.inference_batch).to(self.device)

    def patch_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The detector's map ``(N, S, S)``: M_VAE blurred by ``map_sigma`` or, with a coarse scale,
        the larger of the two scales in units of their rarity on validation images."""
        fine, coarse = self._scale_maps(x)
        if coarse is None:
            return fine
        return larger_rarity(fine, coarse, self.map_tails)

    @torch.no_grad()
    def _scores_and_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.patch_maps(x)
        return map_scores(maps, self.score_method, self.score_fraction), maps

    def differentiable_score(self, x: torch.Tensor) -> torch.Tensor:
        """Score of preprocessed inputs, differentiable with respect to ``x``."""
        return map_scores(self.patch_maps(x), self.score_method, self.score_fraction)

