"""Global&Local completion network (Iizuka et al., SIGGRAPH 2017), baseline and CARAFE++.

Encoder (5x5 conv, two stride-2 stages), dilated middle, decoder (two x2 upsamplings), each
conv followed by BN + ReLU; a tanh output in [-1, 1]. The CARAFE++ form (paper §4.3)
replaces each stride-2 conv by CARAFE++ downsampling + the same conv at stride 1, and each
4x4 deconvolution by CARAFE++ upsampling + a 3x3 conv. Odd sizes work: upsampled maps are
cropped to the size of the matching encoder map.
"""

from __future__ import annotations

import torch
from torch import nn

from carafe_op import CARAFEDownsample, CARAFEUpsample

from ..composite import generator_input
from .common import scale_channels


def conv_bn_relu(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class DownBlock(nn.Module):
    """x2 downsampling: a stride-2 3x3 conv, or CARAFE++ down followed by a stride-1 3x3 conv."""

    def __init__(self, in_ch: int, out_ch: int, carafe: bool) -> None:
        super().__init__()
        self.resample = CARAFEDownsample(in_ch) if carafe else nn.Identity()
        self.conv = conv_bn_relu(in_ch, out_ch, 3, stride=1 if carafe else 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.resample(x))


class UpBlock(nn.Module):
    """x2 upsampling to ``size``: a 4x4 deconvolution, or CARAFE++ up followed by a 3x3 conv."""

    def __init__(self, in_ch: int, out_ch: int, carafe: bool) -> None:
        super().__init__()
        if carafe:
            self.resample = CARAFEUpsample(in_ch)
            self.conv = conv_bn_relu(in_ch, out_ch, 3)
        else:
            self.resample = None
            self.conv = nn.Sequential(
                nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.resample is not None:
            return self.conv(self.resample(x, output_size=size))
        return self.conv(x)[..., : size[0], : size[1]]


class GlobalLocalGenerator(nn.Module):
    """Completion network: ``forward(image, mask) -> prediction`` (N, 3, H, W) in [-1, 1].

    ``mask`` is the hole mask (1 = hole); hole pixels of ``image`` are never read.
    ``width`` scales every channel count; ``dilations`` sets the dilated middle layers.
    """

    def __init__(
        self, carafe: bool = False, width: float = 1.0, dilations: tuple[int, ...] = (2, 4, 8, 16)
    ) -> None:
        super().__init__()
        c32, c64, c128, c256 = (scale_channels(c, width) for c in (32, 64, 128, 256))
        self.stem = conv_bn_relu(4, c64, 5)
        self.down1 = DownBlock(c64, c128, carafe)
        self.conv1 = conv_bn_relu(c128, c128, 3)
        self.down2 = DownBlock(c128, c256, carafe)
        self.middle = nn.Sequential(
            conv_bn_relu(c256, c256, 3),
            conv_bn_relu(c256, c256, 3),
            *(conv_bn_relu(c256, c256, 3, dilation=d) for d in dilations),
            conv_bn_relu(c256, c256, 3),
            conv_bn_relu(c256, c256, 3),
        )
        self.up1 = UpBlock(c256, c128, carafe)
        self.conv2 = conv_bn_relu(c128, c128, 3)
        self.up2 = UpBlock(c128, c64, carafe)
        self.conv3 = conv_bn_relu(c64, c32, 3)
        self.head = nn.Conv2d(c32, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        full = self.stem(generator_input(image, mask))
        half = self.conv1(self.down1(full))
        x = self.middle(self.down2(half))
        x = self.conv2(self.up1(x, half.shape[-2:]))
        x = self.conv3(self.up2(x, full.shape[-2:]))
        return torch.tanh(self.head(x))
