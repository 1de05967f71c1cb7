"""UperNet's FPN: 1x1 lateral convs, top-down x2 upsample-and-add, 3x3 output convs.

The top level P5 is the PPM output; the three top-down upsamplings are the switchable
resampling points (CARAFE++, bilinear as in UperNet, or nearest as in detection FPNs).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation

from .resample import make_upsampler

FPN_MODES = ("carafe", "bilinear", "nearest")


class FPN(nn.Module):
    """Turns backbone features C2..C4 and the PPM output P5 into P2..P5 (all ``channels`` wide)."""

    def __init__(self, in_channels: tuple[int, ...], channels: int, upsample: str = "bilinear") -> None:
        super().__init__()
        self.laterals = nn.ModuleList(Conv2dNormActivation(c, channels, 1) for c in in_channels)
        self.upsamplers = nn.ModuleList(make_upsampler(upsample, channels) for _ in in_channels)
        self.out_convs = nn.ModuleList(Conv2dNormActivation(channels, channels, 3) for _ in in_channels)

    def forward(self, features: list[torch.Tensor], top: torch.Tensor) -> list[torch.Tensor]:
        """``features``: C2..C4 (fine to coarse); ``top``: P5. Returns [P2, P3, P4, P5]."""
        merged = [lateral(f) for lateral, f in zip(self.laterals, features, strict=True)] + [top]
        for level in reversed(range(len(self.laterals))):
            merged[level] = merged[level] + self.upsamplers[level](merged[level + 1], merged[level].shape[-2:])
        return [conv(m) for conv, m in zip(self.out_convs, merged[:-1], strict=True)] + [top]
