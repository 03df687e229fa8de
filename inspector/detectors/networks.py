"""Small convolutional networks for the trained detectors.

- :class:`ConvAutoencoder`: the encoder/decoder of Bergmann et al. (2018) with a
  dense bottleneck (stride-2 4x4 and stride-1 3x3 convolutions, LeakyReLU 0.2).
- :class:`PatchVAE`: a VAE for square patches whose decoder outputs a mean and a
  log-variance per pixel (heteroscedastic Gaussian likelihood).
- :class:`Generator` and :class:`Discriminator`: DCGAN (Radford et al. 2016).

Every network is sized from ``image_size`` (a power-of-two multiple of 16 or 4),
so tests can use tiny inputs and the station the documented defaults.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


def check_size(image_size: int, smallest: int, what: str) -> int:
    """Number of stride-2 stages from ``image_size`` down to ``smallest``.

    Raises:
        ValueError: unless ``image_size`` is ``smallest`` times a power of two (at least 2).
    """
    stages = math.log2(image_size / smallest) if image_size >= smallest else -1
    if stages < 1 or stages != int(stages):
        raise ValueError(f"{what} needs an image size of {smallest} times a power of two (>= {2 * smallest}), "
                         f"got {image_size}")
    return int(stages)


def check_autoencoder_size(image_size: int) -> None:
    """Raise ``ValueError`` unless :class:`ConvAutoencoder` accepts ``image_size``."""
    if image_size % 16 or image_size < 32:
        raise ValueError(f"the autoencoder needs an image size that is a multiple of 16 (>= 32), got {image_size}")


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder with a dense ``latent_dim`` bottleneck.

    The encoder halves the resolution four times (to ``image_size / 16``), with
    3x3 convolutions in between, and a last convolution over the whole remaining
    map gives a ``latent_dim`` vector; the decoder mirrors it. The output passes
    through a sigmoid, so inputs are expected in [0, 1].

    Args:
        image_size: Input side; a multiple of 16, at least 32.
        latent_dim: Size of the bottleneck.
        base: Channel width of the first layers (doubled and quadrupled deeper).
        channels: Image channels.
    """

    def __init__(self, image_size: int = 128, latent_dim: int = 100, base: int = 32, channels: int = 3) -> None:
        super().__init__()
        check_autoencoder_size(image_size)
        last = image_size // 16
        b1, b2, b4 = base, 2 * base, 4 * base
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, b1, 4, 2, 1), _leaky(),
            nn.Conv2d(b1, b1, 4, 2, 1), _leaky(),
            nn.Conv2d(b1, b1, 3, 1, 1), _leaky(),
            nn.Conv2d(b1, b2, 4, 2, 1), _leaky(),
            nn.Conv2d(b2, b2, 3, 1, 1), _leaky(),
            nn.Conv2d(b2, b4, 4, 2, 1), _leaky(),
            nn.Conv2d(b4, b2, 3, 1, 1), _leaky(),
            nn.Conv2d(b2, b1, 3, 1, 1), _leaky(),
            nn.Conv2d(b1, latent_dim, last, 1, 0),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, b1, last, 1, 0), _leaky(),
            nn.Conv2d(b1, b2, 3, 1, 1), _leaky(),
            nn.Conv2d(b2, b4, 3, 1, 1), _leaky(),
            nn.ConvTranspose2d(b4, b2, 4, 2, 1), _leaky(),
            nn.Conv2d(b2, b2, 3, 1, 1), _leaky(),
            nn.ConvTranspose2d(b2, b1, 4, 2, 1), _leaky(),
            nn.Conv2d(b1, b1, 3, 1, 1), _leaky(),
            nn.ConvTranspose2d(b1, b1, 4, 2, 1), _leaky(),
            nn.ConvTranspose2d(b1, channels, 4, 2, 1),
        )
        # He initialization for LeakyReLU(0.2). PyTorch's default (kaiming_uniform with a=sqrt(5))
        # shrinks the signal by about 1.5x per layer: after the 18 layers the output hardly depends
        # on the input, and training stalls at the mean image (validation loss = the image variance).
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` (same shape, values in (0, 1))."""
        return torch.sigmoid(self.decoder(self.encoder(x)))


class PatchVAE(nn.Module):
    """VAE for ``patch`` x ``patch`` inputs with a heteroscedastic Gaussian decoder.

    Args:
        patch: Patch side; 4 times a power of two, at least 8.
        latent_dim: Size of the latent code.
        base: Channel width of the first encoder layer (doubled per stage, capped at 8x).
        channels: Image channels.
        min_log_var: Soft lower bound of the decoder's per-pixel log-variance
            (keeps the likelihood finite on perfectly predicted pixels).
    """

    def __init__(self, patch: int = 32, latent_dim: int = 64, base: int = 32, channels: int = 3,
                 min_log_var: float = -9.0) -> None:
        super().__init__()
        stages = check_size(patch, 4, "the VAE")
        widths = [min(base * 2 ** i, base * 8) for i in range(stages)]
        layers: list[nn.Module] = []
        cin = channels
        for width in widths:
            layers += [nn.Conv2d(cin, width, 4, 2, 1), _leaky()]
            cin = width
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.to_latent = nn.Linear(cin * 16, 2 * latent_dim)
        self.from_latent = nn.Linear(latent_dim, cin * 16)
        self.top = cin
        layers = []
        for width in reversed(widths[:-1]):
            layers += [nn.ConvTranspose2d(cin, width, 4, 2, 1), _leaky()]
            cin = width
        layers += [nn.ConvTranspose2d(cin, base, 4, 2, 1), _leaky(), nn.Conv2d(base, 2 * channels, 3, 1, 1)]
        self.decoder = nn.Sequential(*layers)
        self.min_log_var = float(min_log_var)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of the latent code."""
        mu, log_var = self.to_latent(self.encoder(x)).chunk(2, dim=1)
        return mu, log_var

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel mean (in (0, 1)) and log-variance of the reconstruction."""
        h = nn.functional.leaky_relu(self.from_latent(z), 0.2).view(z.shape[0], self.top, 4, 4)
        mean, raw = self.decoder(h).chunk(2, dim=1)
        floor = self.min_log_var
        return torch.sigmoid(mean), floor + nn.functional.softplus(raw - floor)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        """Reconstruct ``x`` from ``mu + noise * sigma`` (the posterior mean without noise).

        Returns:
            ``(mean, log_var, mu_z, log_var_z)``.
        """
        mu_z, log_var_z = self.encode(x)
        z = mu_z if noise is None else mu_z + noise * torch.exp(0.5 * log_var_z)
        mean, log_var = self.decode(z)
        return mean, log_var, mu_z, log_var_z


class Generator(nn.Module):
    """DCGAN generator: latent vector to an image in [-1, 1].

    Args:
        image_size: Output side; 4 times a power of two, at least 8.
        latent_dim: Size of the latent vector.
        base: Channel width of the last hidden layer (doubled per stage towards the input).
        channels: Image channels.
    """

    def __init__(self, image_size: int = 64, latent_dim: int = 100, base: int = 32, channels: int = 3) -> None:
        super().__init__()
        stages = check_size(image_size, 4, "the generator")
        width = base * 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, S, S)`` from latent vectors ``(N, latent_dim)``."""
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """DCGAN discriminator; :meth:`features` gives the last hidden layer for feature matching.

    Args:
        image_size: Input side; 4 times a power of two, at least 8.
        base: Channel width of the first layer (doubled per stage).
        channels: Image channels.
    """

    def __init__(self, image_size: int = 64, base: int = 32, channels: int = 3) -> None:
        super().__init__()
        stages = check_size(image_size, 4, "the discriminator")
        layers: list[nn.Module] = [nn.Conv2d(channels, base, 4, 2, 1), _leaky()]
        width = base
        for _ in range(stages - 1):
            layers += [nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), _leaky()]
            width *= 2
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, 1, 4, 1, 0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden feature map, ``(N, F, 4, 4)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits, shape ``(N,)``."""
        return self.head(self.body(x)).flatten()


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialization: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
