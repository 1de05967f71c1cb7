"""Pyramid Pooling Module (PSPNet / UperNet): pool at scales 1, 2, 3, 6, resize back, concat.

With ``upsample="carafe"`` each pooled branch is resized in two steps (paper §4.2): bilinear
to half the target size, then CARAFE++ x2, one CARAFE++ module per scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

from .resample import CARAFEResize, half_size

PPM_MODES = ("carafe", "bilinear")


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def sliced_adaptive_avg_pool2d(x: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, scale)`` from slices and means: bin i spans
    [floor(i*L/scale), ceil((i+1)*L/scale)) per axis, as in PyTorch.

    Used during export: the exporters' own adaptive pooling is only valid for the traced
    input size (the legacy exporter refuses it, the dynamo exporter's gathers index out of
    range at other sizes), whereas slices with symbolic bounds stay correct for any size.
    """
    for dim in (2, 3):
        length = x.shape[dim]
        # Non-negative operands only: exported integer division truncates rather than floors.
        starts = [(i * length) // scale for i in range(scale)]
        ends = [((i + 1) * length + scale - 1) // scale for i in range(scale)]
        bins = [x.narrow(dim, start, end - start).mean(dim, keepdim=True)
                for start, end in zip(starts, ends, strict=True)]
        x = torch.cat(bins, dim=dim)
    return x


class PoolingBranch(nn.Module):
    """Adaptive average pool to ``scale`` x ``scale``, 1x1 conv-BN-ReLU, resize to the input size."""

    def __init__(self, in_channels: int, channels: int, scale: int, upsample: str) -> None:
        super().__init__()
        self.scale = scale
        self.pool = nn.AdaptiveAvgPool2d(scale)
        self.conv = Conv2dNormActivation(in_channels, channels, 1)
        self.carafe = CARAFEResize(channels) if upsample == "carafe" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = self.conv(sliced_adaptive_avg_pool2d(x, self.scale) if _exporting() else self.pool(x))
        if self.carafe is None:
            return F.interpolate(pooled, size=size, mode="bilinear", align_corners=False)
        coarse = F.interpolate(pooled, size=half_size(size), mode="bilinear", align_corners=False)
        return self.carafe(coarse, size)


class PPM(nn.Module):
    """Pooling branches plus the input, concatenated and fused by a 3x3 conv-BN-ReLU (P5 of the FPN)."""

    def __init__(
        self, in_channels: int, channels: int, upsample: str = "bilinear", scales: tuple[int, ...] = (1, 2, 3, 6)
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(PoolingBranch(in_channels, channels, s, upsample) for s in scales)
        self.bottleneck = Conv2dNormActivation(in_channels + len(scales) * channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([x, *(branch(x) for branch in self.branches)], dim=1))
