"""AnoGAN: a DCGAN of good images, and a latent search per test image ("anogan").

Schlegl, Seeböck, Waldstein, Schmidt-Erfurth and Langs (2017), "Unsupervised
Anomaly Detection with Generative Adversarial Networks to Guide Marker
Discovery": a DCGAN learns the manifold of good images. For a test image ``x``
a latent ``z`` is found by gradient descent on

    L(z) = (1 - lambda) * mean|x - G(z)| + lambda * mean|f(x) - f(G(z))|

where ``f`` is the discriminator's last hidden layer (feature matching), with
lambda = 0.1. The anomaly score is the final ``L(z)``. Good images lie near the
manifold, defects do not.

The map compares ``x`` and ``G(z)`` where the score's second term does, in the
discriminator, but keeps the layout: ``|f_k(x) - f_k(G(z))|`` for the activations
``f_k`` after the discriminator's ``k``-th stage (``map_features``, 2 by default:
a 16 x 16 grid at 64 px), averaged over channels and resized to the input. A pixel
residual ``|x - G(z)|`` also marks every grain of good texture the generator places a
little differently; the discriminator's features, trained to tell good images from
generated ones, respond less to that. ``map_features=0`` gives the pixel residual
averaged over channels (model files from before the option).

The search runs batched (each image's ``z`` has its own Adam state; the loss of
one image does not touch another's), starting from the best of a fixed bank of
latent vectors, so the score of an image does not depend on its batch. Inputs are
RGB scaled to [-1, 1] (mean = std = 0.5) at 64 px by default.

While training, the validation loss is the residual term alone after a short
search on a few held-out images: the discriminator changes every step, the
generator's reach of unseen good images is what should improve. With about a
hundred reference images the discriminator soon memorizes them; random shifts of
its real and generated inputs (differentiable augmentation, Zhao et al. 2020)
delay that: on the brick texture the best validation residual fell from 0.112 to 0.091.
That residual is noisy from epoch to epoch (the latent search starts from a changing
generator), so training waits :data:`PATIENCE` epochs without a better one before it stops.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from inspector.detectors.base import register
from inspector.detectors.networks import Discriminator, Generator, check_size, init_dcgan_weights
from inspector.detectors.training import SCORE_METHODS, TrainedDetector, map_scores, smooth_maps

MAP_SIGMA = 2.0
MAP_FEATURES = 2
PATIENCE = 25
"""Epochs without a better validation residual before training stops (README, "The detectors from the literature")."""
REAL_LABEL = 0.9  # one-sided label smoothing steadies the discriminator on small sets


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Circularly shift each image by its own random offset of up to ``max_shift`` pixels (differentiable)."""
    if max_shift <= 0:
        return images
    count, _, height, width = images.shape
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, count, 1), generator=generator).to(images.device)
    rows = (torch.arange(height, device=images.device) + dy) % height
    cols = (torch.arange(width, device=images.device) + dx) % width
    which = torch.arange(count, device=images.device)[:, None, None]
    # Advanced indices around a slice put the indexed dimensions first: (N, H, W, C).
    return images[which, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@register
class AnoGANDetector(TrainedDetector):
    """DCGAN with latent search; score = final search loss, map = ``|x - G(z)|``.

    Args:
        device: Torch device; CUDA when available by default.
        image_size: Network input side (4 times a power of two, >= 8).
        seed: Seed for initialization, the validation split, shuffles, noise and the latent bank.
        epochs, batch_size, learning_rate, patience, max_seconds, min_steps_per_epoch:
            Training settings (Adam with betas (0.5, 0.999) for both networks).
        augment: Random horizontal/vertical flips during training.
        val_fraction: Held-out share of the good images (``1 / folds`` by default).
        latent_dim: Size of ``z``.
        base_channels: Width of the discriminator's first and the generator's last hidden layer.
        search_steps: Gradient steps of the latent search per image.
        search_lr: Adam learning rate of the latent search.
        discrimination_weight: lambda, the weight of the feature-matching term.
        latent_bank: Fixed starting candidates; each image starts from the closest.
        val_images: Held-out images searched for the validation loss each epoch.
        val_search_steps: Search steps for the validation loss.
        shift_fraction: Differentiable augmentation (Zhao et al. 2020): real and generated images are
            shifted circularly by up to this share of the image before the discriminator sees them,
            which keeps it from memorizing a small reference set (0 disables).
        score: ``"loss"`` (AnoGAN's score) or a reduction of the map (``"top"``, ``"max"``, ``"mean"``).
        score_fraction: Area fraction for a map reduction.
        inference_batch: Images searched together.
        map_sigma: Gaussian blur of the residual map, in pixels of the network input (0: none).
        map_features: Discriminator stage whose activations the map compares (1 = the first
            hidden layer); 0: the pixel residual ``|x - G(z)|``.
    """

    kind = "anogan"
    networks = ("generator", "discriminator")
    score_methods = ("loss",) + SCORE_METHODS

    def __init__(self, device: torch.device | str | None = None, image_size: int = 64, seed: int = 0,
                 epochs: int = 100, batch_size: int = 16, learning_rate: float = 2e-4, patience: int = PATIENCE,
                 max_seconds: float | None = 420.0, min_steps_per_epoch: int = 25, augment: bool = True,
                 val_fraction: float | None = None, latent_dim: int = 100, base_channels: int = 32,
                 search_steps: int = 50, search_lr: float = 0.05, discrimination_weight: float = 0.1,
                 latent_bank: int = 64, val_images: int = 16, val_search_steps: int = 20,
                 shift_fraction: float = 0.125, score: str = "loss", score_fraction: float = 0.005,
                 inference_batch: int = 32, map_sigma: float = MAP_SIGMA,
                 map_features: int = MAP_FEATURES) -> None:
        super().__init__(device, image_size, seed, epochs, batch_size, learning_rate, patience, max_seconds,
                         min_steps_per_epoch, augment, val_fraction, score, score_fraction, inference_batch,
                         mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), latent_dim=int(latent_dim),
                         base_channels=int(base_channels), search_steps=int(search_steps),
                         search_lr=float(search_lr), discrimination_weight=float(discrimination_weight),
                         latent_bank=int(latent_bank), val_images=int(val_images),
                         val_search_steps=int(val_search_steps), shift_fraction=float(shift_fraction),
                         map_sigma=float(map_sigma), map_features=int(map_features))
        if search_steps < 0 or val_search_steps < 0 or latent_bank < 1 or val_images < 1:
            raise ValueError("search_steps and val_search_steps must be >= 0, latent_bank and val_images >= 1")
        if not 0.0 <= discrimination_weight <= 1.0 or search_lr <= 0 or not 0.0 <= shift_fraction < 0.5:
            raise ValueError("discrimination_weight must be in [0, 1], search_lr positive, shift_fraction in [0, 0.5)")
        if map_sigma < 0:
            raise ValueError("map_sigma must not be negative")
        stages = check_size(int(image_size), 4, "AnoGAN")
        if not 0 <= map_features <= stages:
            raise ValueError(f"map_features must be in [0, {stages}] at image size {image_size}, got {map_features}")
        self.map_features = int(map_features)
        self.map_sigma = float(map_sigma)
        self.latent_dim, self.base_channels = int(latent_dim), int(base_channels)
        self.search_steps, self.search_lr = int(search_steps), float(search_lr)
        self.weight = float(discrimination_weight)
        self.bank_size, self.val_images, self.val_search_steps = int(latent_bank), int(val_images), int(val_search_steps)
        self.shift_fraction = float(shift_fraction)

    def _build(self) -> None:
        size = self.preprocessing.image_size
        self.generator = Generator(size, self.latent_dim, self.base_channels).to(self.device)
        self.discriminator = Discriminator(size, self.base_channels).to(self.device)
        self.generator.apply(init_dcgan_weights)
        self.discriminator.apply(init_dcgan_weights)
        bank = torch.randn(self.bank_size, self.latent_dim, generator=torch.Generator().manual_seed(self.seed))
        # A buffer, so that it is saved with the generator and a loaded model searches from the same starts.
        self.generator.register_buffer("latent_bank", bank.to(self.device))
        self._bank_images: torch.Tensor | None = None

    # ---- training --------------------------------------------------------------------------
    def _trainer(self, train_x: torch.Tensor, val_x: torch.Tensor,
                 generator: torch.Generator) -> tuple[Callable[[torch.Tensor], float], Callable[[], float]]:
        g_opt = torch.optim.Adam(self.generator.parameters(), lr=self.settings.learning_rate, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=self.settings.learning_rate, betas=(0.5, 0.999))
        val_subset = val_x[:self.val_images]
        shift = round(self.shift_fraction * self.preprocessing.image_size)

        def step(real: torch.Tensor) -> float:
            z = torch.randn(real.shape[0], self.latent_dim, generator=generator).to(self.device)
            fake = random_shift(self.generator(z), shift, generator)
            d_opt.zero_grad(set_to_none=True)
            real_logits = self.discriminator(random_shift(real, shift, generator))
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, REAL_LABEL))
                      + F.binary_cross_entropy_with_logits(self.discriminator(fake.detach()),
                                                           torch.zeros_like(real_logits)))
            d_loss.backward()
            d_opt.step()
            g_opt.zero_grad(set_to_none=True)
            fake_logits = self.discriminator(fake)
            g_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
            g_loss.backward()
            g_opt.step()
            return float(g_loss.detach())

        def validate() -> float:
            _, residual, _ = self.search(val_subset, self.val_search_steps, weight=0.0)
            return float(residual.mean())

        return step, validate

    # ---- latent search ---------------------------------------------------------------------
    def _start(self, x: torch.Tensor) -> torch.Tensor:
        """For each image, the bank vector whose generated image is closest (mean absolute difference)."""
        with torch.no_grad():
            if not self._fitted:  # still training: the generator changes between calls
                images = self.generator(self.generator.latent_bank)
            else:
                if self._bank_images is None:
                    self._bank_images = self.generator(self.generator.latent_bank)
                images = self._bank_images
            distance = torch.cdist(x.flatten(1), images.flatten(1), p=1)
        return self.generator.latent_bank[distance.argmin(dim=1)].clone()

    def _losses(self, x: torch.Tensor, x_features: torch.Tensor | None, z: torch.Tensor, weight: float):
        generated = self.generator(z)
        residual = (x - generated).abs().flatten(1).mean(dim=1)
        if weight == 0.0:
            return residual, residual, generated
        features = self.discriminator.features(generated)
        discrimination = (x_features - features).abs().flatten(1).mean(dim=1)
        return (1.0 - weight) * residual + weight * discrimination, residual, generated

    def search(self, x: torch.Tensor, steps: int | None = None,
               weight: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Find ``z`` for each preprocessed image by gradient descent on the AnoGAN loss.

        Args:
            x: Preprocessed images ``(N, C, S, S)`` in [-1, 1].
            steps: Search steps (``search_steps`` by default).
            weight: lambda (``discrimination_weight`` by default).

        Returns:
            ``(loss, residual, generated)``: final losses ``(N,)``, their residual terms ``(N,)``
            and the generated images ``(N, C, S, S)``.
        """
        steps = self.search_steps if steps is None else steps
        weight = self.weight if weight is None else weight
        x = x.detach()
        with torch.no_grad():
            x_features = self.discriminator.features(x) if weight else None
        z = self._start(x).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=self.search_lr)
        with torch.enable_grad():
            for _ in range(steps):
                loss = self._losses(x, x_features, z, weight)[0]
                (z.grad,) = torch.autograd.grad(loss.sum(), z)
                optimizer.step()
        with torch.no_grad():
            loss, residual, generated = self._losses(x, x_features, z, weight)
        return loss, residual, generated

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device):
        """Rebuild from a model file; files from before ``map_features`` keep the pixel residual map."""
        options = {"map_features": 0, **config["options"]}
        return super().from_state({**config, "options": options}, tensors, device)

    def residual_maps(self, x: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        """Unblurred maps ``(N, S, S)``: the mean absolute difference of the discriminator's
        activations after stage ``map_features`` (resized bilinearly to the input), or of the
        pixels with ``map_features`` 0."""
        if self.map_features == 0:
            return (x - generated).abs().mean(dim=1)
        layers = self.discriminator.body[:3 * self.map_features - 1]  # conv + LeakyReLU, then conv, BN, LeakyReLU
        difference = (layers(x) - layers(generated)).abs().mean(dim=1, keepdim=True)
        return F.interpolate(difference, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]

    def _scores_and_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loss, _, generated = self.search(x)
        with torch.no_grad():
            maps = smooth_maps(self.residual_maps(x, generated), self.map_sigma)
        if self.score_method == "loss":
            return loss, maps
        return map_scores(maps, self.score_method, self.score_fraction), maps
