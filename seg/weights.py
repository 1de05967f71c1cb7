"""Loading weights: ImageNet backbones (timm hub or a local file) and whole-model checkpoints.

Loads are non-strict where new modules are expected (CARAFE++ layers start fresh), and the
returned ``LoadReport`` lists exactly which model keys received no weights (``missing``)
and which checkpoint keys were not used (``unexpected``). Nothing is downloaded unless
``"timm"`` is asked for explicitly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadReport:
    """Keys the model expected but the checkpoint lacked, and checkpoint keys the model did not use."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    def __str__(self) -> str:
        return (
            f"{len(self.missing)} missing (newly initialised): {', '.join(self.missing) or '-'}; "
            f"{len(self.unexpected)} unexpected (unused): {', '.join(self.unexpected) or '-'}"
        )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` or ``torch.save`` file (optionally under "state_dict"/"model")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    return state


def load_state(module: nn.Module, state: dict[str, torch.Tensor], strict: bool = False) -> LoadReport:
    """Copy matching tensors into ``module``; shape mismatches and (if ``strict``) any missing or
    unexpected key raise a ``ValueError`` naming them."""
    own = module.state_dict()
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise ValueError("checkpoint shapes do not match the model: " + "; ".join(mismatched))
    report = LoadReport(tuple(k for k in own if k not in state), tuple(k for k in state if k not in own))
    module.load_state_dict(state, strict=False)
    if strict and (report.missing or report.unexpected):
        raise ValueError(f"checkpoint does not match the model: {report}")
    return report


def load_backbone_weights(encoder: nn.Module, source: str | Path) -> LoadReport:
    """ImageNet weights for a ``ResNetEncoder``: ``"timm"`` (timm's hub, needs internet) or a file
    holding a timm/torchvision-style ResNet state dict. The classifier (``fc.*``) is reported unused."""
    if source == "timm":
        import timm

        state = timm.create_model(encoder.name, pretrained=True).state_dict()
    else:
        state = read_state_dict(source)
    report = load_state(encoder.body, state)
    log.info("loaded backbone weights from %s: %s", source, report)
    return report
