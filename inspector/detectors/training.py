"""What the trained detectors share: seeding, the validation split, flips, the
training loop (early stopping, time budget, progress and cancel) and map scores.

The validation split plays two parts: its loss decides when training stops, and
its images, never trained on, give the held-out scores for calibration. Only the
stopping epoch is chosen on it, so the held-out scores stay nearly unbiased.
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, ClassVar, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inspector.backbones.preprocessing import Preprocessing
from inspector.core.progress import Progress
from inspector.detectors.base import Detector, FitResult, pick_device

from inspector.segmentation.smoothing import smooth_maps  # noqa: F401 (the detectors import it from here)

MIN_IMAGES = 10
SCORE_METHODS = ("top", "max", "mean")


@dataclass(frozen=True)
class TrainingSettings:
    """How long and how fast to train.

    Attributes:
        epochs: Upper bound on epochs.
        batch_size: Images per step.
        learning_rate: Adam learning rate.
        patience: Stop after this many epochs without a better validation loss.
        max_seconds: Stop after this much training time (``None``: no limit).
        min_steps_per_epoch: An epoch repeats the shuffled data until it has this many steps,
            so that small reference sets still give meaningful epochs.
        min_delta: Relative improvement of the validation loss that counts as better.
    """

    epochs: int = 100
    batch_size: int = 16
    learning_rate: float = 1e-3
    patience: int = 8
    max_seconds: float | None = 420.0
    min_steps_per_epoch: int = 20
    min_delta: float = 1e-3

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1 or self.min_steps_per_epoch < 1:
            raise ValueError("epochs, batch_size, patience and min_steps_per_epoch must be positive")
        if self.learning_rate <= 0 or (self.max_seconds is not None and self.max_seconds <= 0):
            raise ValueError("learning_rate and max_seconds must be positive")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class TrainingReport:
    """How training ended.

    Attributes:
        epochs_run: Epochs completed.
        best_epoch: Epoch whose weights were kept.
        best_loss: Its validation loss.
        stop_reason: ``"epochs"``, ``"early stop"`` or ``"time budget"``.
        seconds: Wall time of the loop.
    """

    epochs_run: int
    best_epoch: int
    best_loss: float
    stop_reason: str
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return asdict(self)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[torch.Generator]:
    """Seed torch for a block without disturbing the caller's random state.

    Yields:
        A CPU generator seeded with ``seed`` for shuffles, crops and noise.
    """
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


def split_validation(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(count)`` into sorted (train, validation) index arrays.

    The validation part has ``round(fraction * count)`` images, at least 2, and
    at least 2 images are left to train on.

    Raises:
        ValueError: with fewer than :data:`MIN_IMAGES` images or a fraction outside (0, 1).
    """
    if count < MIN_IMAGES:
        raise ValueError(f"trained detectors need at least {MIN_IMAGES} good images, got {count}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    n_val = min(max(2, round(fraction * count)), count - 2)
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def random_flips(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of ``(N, C, H, W)`` horizontally and vertically, each with probability 1/2."""
    flips = torch.rand(2, batch.shape[0], generator=generator) < 0.5
    out = batch.clone()
    h, v = flips[0].to(batch.device), flips[1].to(batch.device)
    out[h] = out[h].flip(-1)
    out[v] = out[v].flip(-2)
    return out


def random_patches(images: torch.Tensor, per_image: int, patch: int, generator: torch.Generator) -> torch.Tensor:
    """``per_image`` random ``patch`` x ``patch`` crops of each image of ``(B, C, S, S)``: ``(B * per_image, C, P, P)``."""
    count, _, height, width = images.shape
    n = count * per_image
    top = torch.randint(0, height - patch + 1, (n,), generator=generator).to(images.device)
    left = torch.randint(0, width - patch + 1, (n,), generator=generator).to(images.device)
    offsets = torch.arange(patch, device=images.device)
    rows = (top[:, None] + offsets)[:, :, None]
    cols = (left[:, None] + offsets)[:, None, :]
    which = torch.arange(count, device=images.device).repeat_interleave(per_image)[:, None, None]
    # Advanced indices around a slice put the indexed dimensions first: (n, P, P, C).
    return images[which, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def sliding_windows(x: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """All ``patch`` x ``patch`` windows of ``(N, C, S, S)`` at ``stride``: ``(N * L, C, P, P)``, image-major."""
    cols = F.unfold(x, patch, stride=stride)
    return cols.transpose(1, 2).reshape(-1, x.shape[1], patch, patch)


def blur_images(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each channel of ``(N, C, S, S)`` images blurred by ``sigma`` pixels (the maps' own smoothing)."""
    n, c, height, width = images.shape
    return smooth_maps(images.reshape(n * c, height, width), sigma).reshape(n, c, height, width)


def fold_windows(windows: torch.Tensor, count: int, size: int, stride: int) -> torch.Tensor:
    """Inverse of :func:`sliding_windows`: ``(N * L, C, P, P)`` to ``(N, C, S, S)``, overlaps averaged."""
    channels, patch = windows.shape[1], windows.shape[-1]
    cols = windows.reshape(count, -1, channels * patch * patch).transpose(1, 2)
    summed = F.fold(cols, size, patch, stride=stride)
    covered = F.fold(torch.ones_like(cols[:1, :patch * patch]), size, patch, stride=stride)
    return summed / covered


def _snapshot(modules: Sequence[nn.Module]) -> list[dict[str, torch.Tensor]]:
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]


def train(step: Callable[[torch.Tensor], float], validate: Callable[[], float], data: torch.Tensor,
          settings: TrainingSettings, progress: Progress, generator: torch.Generator,
          modules: Sequence[nn.Module], augment: bool = True) -> TrainingReport:
    """Run epochs of ``step`` over shuffled batches; keep the weights with the best validation loss.

    Args:
        step: Trains on one batch (it owns its optimizers); returns the batch loss.
        validate: Validation loss of the current weights (the modules are in eval mode).
        data: Training images ``(N, C, H, W)`` on the training device.
        settings: Epochs, batch size, patience, time budget.
        progress: Receives ``(epoch, epochs, "epoch e: loss l, validation v")``; may cancel.
        generator: Seeded generator for shuffles and flips.
        modules: Networks to put in train/eval mode and to snapshot.
        augment: Apply :func:`random_flips` to each batch.

    Raises:
        Cancelled: when ``progress`` was cancelled (checked after every step).
    """
    started = time.perf_counter()
    count = data.shape[0]
    batch_size = min(settings.batch_size, count)
    per_pass = max(1, count // batch_size)
    passes = math.ceil(settings.min_steps_per_epoch / per_pass)
    best, best_epoch, best_state, waited = math.inf, 0, _snapshot(modules), 0
    reason, epoch = "epochs", 0
    progress.update(0, settings.epochs, "training")
    while epoch < settings.epochs:
        epoch += 1
        for module in modules:
            module.train()
        losses, out_of_time = [], False
        for _ in range(passes):
            order = torch.randperm(count, generator=generator).to(data.device)
            # Drop the last incomplete batch: batch norm needs more than one sample.
            for start in range(0, per_pass * batch_size, batch_size):
                batch = data[order[start:start + batch_size]]
                losses.append(step(random_flips(batch, generator) if augment else batch))
                progress.check()
                out_of_time = settings.max_seconds is not None and time.perf_counter() - started > settings.max_seconds
                if out_of_time:
                    break
            if out_of_time:
                break
        for module in modules:
            module.eval()
        val = float(validate())
        if val < best - settings.min_delta * abs(best) or not math.isfinite(best):
            best, best_epoch, best_state, waited = val, epoch, _snapshot(modules), 0
        else:
            waited += 1
        progress.update(epoch, settings.epochs, f"epoch {epoch}: loss {float(np.mean(losses)):.4f}, "
                                                f"validation {val:.4f}")
        if out_of_time:
            reason = "time budget"
            break
        if waited >= settings.patience:
            reason = "early stop"
            break
    for module, state in zip(modules, best_state):
        module.load_state_dict(state)
        module.eval()
    return TrainingReport(epoch, best_epoch, best, reason, round(time.perf_counter() - started, 3))


def map_scores(maps: torch.Tensor, method: str = "top", fraction: float = 0.01) -> torch.Tensor:
    """Image scores ``(N,)`` from anomaly maps ``(N, H, W)``.

    Args:
        maps: Per-pixel anomaly values.
        method: ``"top"``: mean of the highest ``fraction`` of pixels; ``"max"``: maximum of
            the map averaged over a square window of ``fraction`` of the area; ``"mean"``.
        fraction: Roughly the area of the smallest defect worth flagging, as a fraction of the image.

    Raises:
        ValueError: for an unknown method or a fraction outside (0, 1].
    """
    if method not in SCORE_METHODS:
        raise ValueError(f"unknown score method {method!r}; choose one of {', '.join(SCORE_METHODS)}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"the score fraction must be in (0, 1], got {fraction}")
    flat = maps.flatten(1)
    if method == "mean":
        return flat.mean(dim=1)
    if method == "top":
        k = max(1, math.ceil(fraction * flat.shape[1]))
        return flat.topk(k, dim=1).values.mean(dim=1)
    side = max(1, round(math.sqrt(fraction * flat.shape[1])))
    return F.avg_pool2d(maps[:, None], side, stride=1).flatten(1).max(dim=1).values


class TrainedDetector(Detector):
    """Base of the detectors whose networks are trained on the good images.

    Subclasses build their networks in :meth:`_build`, name them in
    ``networks``, give a training step and validation loss in :meth:`_trainer`
    and score preprocessed batches in :meth:`_scores_and_maps`. Everything a
    subclass needs to rebuild itself lives in ``self.options`` (its constructor's
    keyword arguments), so :meth:`from_state` is ``cls(device=..., **options)``
    followed by loading the network weights.

    Args:
        device: Torch device; CUDA when available by default.
        image_size: Side of the square network input.
        seed: Seed for weight initialization, the validation split, shuffles and noise.
        epochs, batch_size, learning_rate, patience, max_seconds, min_steps_per_epoch:
            See :class:`TrainingSettings`.
        augment: Random horizontal and vertical flips during training.
        val_fraction: Share of the good images held out for early stopping and
            calibration; ``1 / folds`` of :meth:`fit` by default.
        score: Map-to-score reduction (see :func:`map_scores`).
        score_fraction: Its area fraction.
        inference_batch: Images per forward pass when scoring.
        mean, std: Per-channel normalization after scaling pixels to [0, 1].
    """

    networks: ClassVar[tuple[str, ...]] = ()
    score_methods: ClassVar[tuple[str, ...]] = SCORE_METHODS

    def __init__(self, device: torch.device | str | None, image_size: int, seed: int, epochs: int,
                 batch_size: int, learning_rate: float, patience: int, max_seconds: float | None,
                 min_steps_per_epoch: int, augment: bool, val_fraction: float | None, score: str,
                 score_fraction: float, inference_batch: int, mean: tuple[float, float, float],
                 std: tuple[float, float, float], **method_options) -> None:
        self.device = pick_device(device)
        self.preprocessing = Preprocessing(image_size=int(image_size), mean=tuple(mean), std=tuple(std))
        self.settings = TrainingSettings(int(epochs), int(batch_size), float(learning_rate), int(patience),
                                         None if max_seconds is None else float(max_seconds),
                                         int(min_steps_per_epoch))
        if score not in self.score_methods:
            raise ValueError(f"unknown score method {score!r}; choose one of {', '.join(self.score_methods)}")
        if not 0.0 < score_fraction <= 1.0:
            raise ValueError(f"the score fraction must be in (0, 1], got {score_fraction}")
        if val_fraction is not None and not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if inference_batch < 1:
            raise ValueError("inference_batch must be positive")
        self.seed = int(seed)
        self.augment = bool(augment)
        self.val_fraction = val_fraction
        self.score_method = score
        self.score_fraction = float(score_fraction)
        self.inference_batch = int(inference_batch)
        self.report: TrainingReport | None = None
        self.options = dict(image_size=int(image_size), seed=self.seed, epochs=int(epochs),
                            batch_size=int(batch_size), learning_rate=float(learning_rate), patience=int(patience),
                            max_seconds=max_seconds, min_steps_per_epoch=int(min_steps_per_epoch),
                            augment=self.augment, val_fraction=val_fraction, score=score,
                            score_fraction=self.score_fraction, inference_batch=self.inference_batch, **method_options)
        self._fitted = False

    # ---- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def _build(self) -> None:
        """Create the (untrained) networks named in ``networks`` on ``self.device``."""

    @abstractmethod
    def _trainer(self, train_x: torch.Tensor, val_x: torch.Tensor,
                 generator: torch.Generator) -> tuple[Callable[[torch.Tensor], float], Callable[[], float]]:
        """The training step and the validation loss for :func:`train`."""

    @abstractmethod
    def _scores_and_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw scores ``(N,)`` and maps ``(N, S, S)`` of a preprocessed batch."""

    # ---- fitting and scoring ---------------------------------------------------------------
    def _modules(self) -> list[nn.Module]:
        return [getattr(self, name) for name in self.networks]

    def _tensor(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        parts = [self.preprocessing.to_tensor(images[i:i + 64], self.device) for i in range(0, len(images), 64)]
        return torch.cat(parts)

    def fit(self, images: Sequence[np.ndarray], progress: Progress, folds: int = 5) -> FitResult:
        """Train on good images, keeping a validation split out for early stopping and calibration.

        Returns:
            Scores and maps of the validation images, which were never trained on.

        Raises:
            ValueError: with fewer than 10 images.
            Cancelled: when ``progress`` is cancelled.
        """
        self._fitted = False
        train_idx, val_idx = self.validation_split(len(images), folds)
        progress.update(0, self.settings.epochs, "preparing images")
        train_x = self._tensor([images[i] for i in train_idx])
        val_x = self._tensor([images[i] for i in val_idx])
        with seeded(self.seed, self.device) as generator:
            self._build()
            step, validate = self._trainer(train_x, val_x, generator)
            self.report = train(step, validate, train_x, self.settings, progress, generator, self._modules(),
                                self.augment)
        progress.update(self.settings.epochs, self.settings.epochs, "scoring held-out images")
        return self.finish_fit(val_x)

    def validation_split(self, count: int, folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """The (train, validation) indices :meth:`fit` uses for ``count`` images (by the detector's seed)."""
        fraction = self.val_fraction if self.val_fraction is not None else 1.0 / max(2, folds)
        return split_validation(count, fraction, self.seed)

    def finish_fit(self, val_x: torch.Tensor) -> FitResult:
        """What :meth:`fit` does once the networks are trained: the statistics taken from the
        validation images, then their held-out scores and maps."""
        self._fitted = True
        with torch.no_grad():
            self._after_training(val_x)
        scores, maps = self._run(val_x)
        return FitResult(held_out_scores=scores, held_out_maps=maps)

    def load_networks(self, tensors: dict[str, torch.Tensor]) -> None:
        """Build the networks and load their weights from ``tensors`` (``NAME.`` prefixed keys), strictly."""
        self._build()
        for name in self.networks:
            prefix = f"{name}."
            own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            getattr(self, name).load_state_dict(own, strict=True)
            getattr(self, name).eval()

    def _after_training(self, val_x: torch.Tensor) -> None:
        """Statistics a detector takes from its validation images once trained (default: none)."""

    def _run(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if not self._fitted:
            raise RuntimeError("the detector is not fitted")
        scores, maps = [], []
        for start in range(0, x.shape[0], self.inference_batch):
            s, m = self._scores_and_maps(x[start:start + self.inference_batch])
            scores.append(s.detach().double().cpu())
            maps.append(m.detach().float().cpu())
        return torch.cat(scores).numpy(), torch.cat(maps).numpy()

    def score(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Raw anomaly scores, shape ``(N,)``."""
        return self.score_and_maps(images)[0]

    def score_and_maps(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores ``(N,)`` and maps ``(N, S, S)`` at the input size."""
        scores, maps = [], []
        for start in range(0, len(images), self.inference_batch):
            s, m = self._run(self._tensor(images[start:start + self.inference_batch]))
            scores.append(s)
            maps.append(m)
        if not scores:
            size = self.preprocessing.image_size
            return np.zeros(0), np.zeros((0, size, size), np.float32)
        return np.concatenate(scores), np.concatenate(maps)

    @property
    def has_maps(self) -> bool:
        """Trained detectors always have a residual map."""
        return True

    # ---- state -----------------------------------------------------------------------------
    def config(self) -> dict:
        """Constructor options, preprocessing and how training ended."""
        return {"options": dict(self.options), "preprocessing": self.preprocessing.to_dict(),
                "training": self.report.to_dict() if self.report else None}

    def tensors(self) -> dict[str, torch.Tensor]:
        """Every network's state dict, keys prefixed with the network's name."""
        if not self._fitted:
            raise RuntimeError("the detector is not fitted")
        return {f"{name}.{key}": value for name in self.networks
                for key, value in getattr(self, name).state_dict().items()}

    @classmethod
    def from_state(cls, config: dict, tensors: dict[str, torch.Tensor], device: torch.device) -> "TrainedDetector":
        """Rebuild from a model file: construct with the stored options, load the weights.

        Files written before maps were blurred (no ``map_sigma`` option) keep their unblurred maps.
        """
        detector = cls(device=device, **{"map_sigma": 0.0, **config["options"]})
        detector.preprocessing = Preprocessing.from_dict(config["preprocessing"])
        if config.get("training"):
            detector.report = TrainingReport(**config["training"])
        detector.load_networks(tensors)
        detector._fitted = True
        return detector
