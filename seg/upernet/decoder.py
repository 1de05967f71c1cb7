"""UperNet decoder (Xiao et al. 2018; CSAIL / mmseg topology): PPM -> FPN -> FUSE."""

from __future__ import annotations

import torch
from torch import nn

from .fpn import FPN
from .fuse import Fuse
from .ppm import PPM


class UperNetDecoder(nn.Module):
    """Maps backbone features C2..C5 to one ``channels``-wide map at stride 4.

    ``ppm``, ``fpn`` and ``fuse`` name each component's upsampling mode.
    """

    def __init__(
        self, encoder_channels: tuple[int, ...], channels: int = 512,
        ppm: str = "bilinear", fpn: str = "bilinear", fuse: str = "bilinear",
    ) -> None:
        super().__init__()
        self.ppm = PPM(encoder_channels[-1], channels, upsample=ppm)
        self.fpn = FPN(encoder_channels[:-1], channels, upsample=fpn)
        self.fuse = Fuse(channels, levels=len(encoder_channels), upsample=fuse)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pyramid = self.fpn(features[:-1], self.ppm(features[-1]))
        return self.fuse(pyramid)
