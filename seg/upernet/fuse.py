"""UperNet's multi-level fusion (FUSE): bring P3..P5 to P2's size, concatenate, 3x3 conv.

Bilinear (UperNet): each level is resized straight to P2. CARAFE++ (paper §4.2): the
equivalent sequential form, P5 x2 -> concat P4 -> x2 -> concat P3 -> x2 -> concat P2, so the
three CARAFE++ modules see C, 2C and 3C channels. Both concatenate in the order P2, P3, P4, P5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

from .resample import CARAFEResize

FUSE_MODES = ("carafe", "bilinear")


class Fuse(nn.Module):
    """Fuses [P2, P3, P4, P5] (``channels`` each) into one map at P2's resolution."""

    def __init__(self, channels: int, levels: int = 4, upsample: str = "bilinear") -> None:
        super().__init__()
        self.upsamplers = (
            nn.ModuleList(CARAFEResize(channels * n) for n in range(1, levels)) if upsample == "carafe" else None
        )
        self.bottleneck = Conv2dNormActivation(levels * channels, channels, 3)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        if self.upsamplers is None:
            size = pyramid[0].shape[-2:]
            resized = [pyramid[0]] + [F.interpolate(p, size=size, mode="bilinear", align_corners=False)
                                      for p in pyramid[1:]]
            return self.bottleneck(torch.cat(resized, dim=1))
        state = pyramid[-1]
        for upsample, skip in zip(self.upsamplers, reversed(pyramid[:-1]), strict=True):
            state = torch.cat([skip, upsample(state, skip.shape[-2:])], dim=1)
        return self.bottleneck(state)
