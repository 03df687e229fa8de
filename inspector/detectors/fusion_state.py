"""What a fitted fusion detector's model file holds, and how files from before each option are read.

The configuration (JSON) gives the constructor's options (:func:`stored_options`; files
from before an option get the behaviour they were fitted with); the tensors
(safetensors) are written by :func:`state_tensors` and put back by :func:`restore_state`.
"""

from __future__ import annotations

import torch

from inspector.backbones.preprocessing import Preprocessing
from inspector.detectors.local_bank import LocalBank
from inspector.detectors.memory_bank import MemoryBank
from inspector.detectors.patch_map import PatchMapModel

LEGACY_BANK = {"stride": 16, "border": "none", "edge": 0}
"""Model files written before the bank had these options: stride 16 (2x2 average), no shrink, no edge rescaling."""
LEGACY_MAP_BANK_WEIGHT = 0.5
"""What model files written before the option have: the plain mean of the two maps."""


def stored_options(config: dict) -> dict:
    """The bank and map options a fitted fusion detector's configuration stands for (older
    files: the first bank, the plain-mean map)."""
    bank = config["bank"]
    options = {"bank_coreset": int(bank["coreset"]), "bank_dimensions": int(bank["dimensions"]),
               "bank_stride": int(bank.get("stride", LEGACY_BANK["stride"])),
               "bank_border": str(bank.get("border", LEGACY_BANK["border"])),
               "bank_edge": int(bank.get("edge", LEGACY_BANK["edge"])),
               "map_bank_weight": float(config.get("map_bank_weight", LEGACY_MAP_BANK_WEIGHT))}
    local = config.get("local_bank")
    if isinstance(local, dict):
        options.update(local_radius=int(local["radius"]), local_keep=int(local["keep"]))
    return options


def state_tensors(detector) -> dict[str, torch.Tensor]:
    """The fusion's own tensors (beyond the Gaussian detector's): per-cell statistics, the banks, edge factors."""
    out = {"position.mean": detector.position_mean, "position.std": detector.position_std}
    if "bank" in detector.components:
        out.update({f"bank.{k}": v for k, v in detector.bank.tensors().items()})
        if detector.edge_factors is not None:
            out["fusion.bank_edge_factors"] = detector.edge_factors
    if "local" in detector.components:
        out.update({f"local_bank.{k}": v for k, v in detector.local.tensors().items()})
    return out


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def restore_state(detector, config: dict, tensors: dict[str, torch.Tensor], device: torch.device) -> None:
    """Put a model file's fitted state into a fusion detector built with :func:`stored_options`."""
    detector.preprocessing = Preprocessing.from_dict(config["preprocessing"])
    detector.means = [tensors[f"gaussian.level{lvl}.mean"].to(device) for lvl in detector.levels]
    detector.precisions = [tensors[f"gaussian.level{lvl}.precision"].to(device) for lvl in detector.levels]
    detector.patch_map = PatchMapModel.from_state(config["patch_map"], _prefixed(tensors, "patch_map."), device)
    detector.position_mean = tensors["position.mean"].to(device)
    detector.position_std = tensors["position.std"].to(device)
    if "bank" in detector.components:
        detector.bank = MemoryBank.from_state(config["bank"], _prefixed(tensors, "bank."), device)
        if "fusion.bank_edge_factors" in tensors:
            detector.edge_factors = tensors["fusion.bank_edge_factors"].float().to(device)
    if "local" in detector.components:
        detector.local = LocalBank.from_state(config["local_bank"], _prefixed(tensors, "local_bank."), device)
    detector.norms = {c: (float(v[0]), float(v[1])) for c, v in config["norms"].items()}
