"""Partial-convolution U-Net (Liu et al., ECCV 2018), baseline and CARAFE++.

Encoder: ``depth`` stride-2 partial convs (7x7, 5x5, 5x5, then 3x3; 64, 128, 256, then 512
channels), BN (not on the first) and ReLU. Decoder: x2 nearest upsampling of features and
validity, concatenation with the skip's features and validity, 3x3 partial conv, BN and
LeakyReLU 0.2; the last level's skip is the input image itself and its output is the image
(tanh, so predictions lie in [-1, 1]). The CARAFE++ form (paper §4.3) replaces each strided
partial conv by mask-aware CARAFE++ down + the partial conv at stride 1, and each nearest
upsampling by mask-aware CARAFE++ up, so the validity mask travels through the same kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from carafe_op import CARAFEDownsample, CARAFEUpsample

from ..composite import hole_to_validity
from ..partial_conv import PartialConv2d
from .common import scale_channels

ENCODER_CHANNELS = (64, 128, 256, 512)
ENCODER_KERNELS = (7, 5, 5, 3)


class PartialConvBlock(nn.Module):
    """Partial conv, optional BN, optional activation; passes the validity mask along."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, stride: int, norm: bool, activation: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv = PartialConv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, bias=not norm)
        self.norm = nn.BatchNorm2d(out_ch) if norm else nn.Identity()
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: torch.Tensor, validity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, validity = self.conv(x, validity)
        return self.activation(self.norm(x)), validity


class EncoderLevel(nn.Module):
    """x2 downsampling: stride-2 partial conv, or mask-aware CARAFE++ down + stride-1 partial conv."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, norm: bool, carafe: bool) -> None:
        super().__init__()
        self.resample = CARAFEDownsample(in_ch) if carafe else None
        self.block = PartialConvBlock(in_ch, out_ch, kernel_size, 1 if carafe else 2, norm, nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, validity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.resample is not None:
            x, validity = self.resample.forward_masked(x, validity)
        return self.block(x, validity)


class DecoderLevel(nn.Module):
    """x2 upsampling (nearest, or mask-aware CARAFE++) to the skip's size, concatenation, 3x3 partial conv."""

    def __init__(
        self, in_ch: int, skip_ch: int, out_ch: int, norm: bool, activation: nn.Module | None, carafe: bool
    ) -> None:
        super().__init__()
        self.resample = CARAFEUpsample(in_ch) if carafe else None
        self.block = PartialConvBlock(in_ch + skip_ch, out_ch, 3, 1, norm, activation)

    def upsample(
        self, x: torch.Tensor, validity: torch.Tensor, size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.resample is not None:
            return self.resample.forward_masked(x, validity, output_size=size)
        h, w = size
        up = [F.interpolate(t, scale_factor=2, mode="nearest")[..., :h, :w] for t in (x, validity)]
        return up[0], up[1]

    def forward(
        self, x: torch.Tensor, validity: torch.Tensor, skip: torch.Tensor, skip_validity: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, validity = self.upsample(x, validity, skip.shape[-2:])
        n, _, h, w = x.shape
        validity = torch.cat(
            [validity.expand(n, x.shape[1], h, w), skip_validity.expand(n, skip.shape[1], h, w)], dim=1
        )
        return self.block(torch.cat([x, skip], dim=1), validity)


class PConvUNet(nn.Module):
    """Partial-conv U-Net: ``forward(image, mask) -> prediction`` (N, 3, H, W) in [-1, 1].

    ``mask`` is the hole mask (1 = hole); hole pixels of ``image`` are never read. ``depth``
    is the number of x2 levels (7 for 256x256 inputs, 8 for 512x512 as in the paper);
    ``width`` scales every channel count.
    """

    def __init__(self, carafe: bool = False, width: float = 1.0, depth: int = 7) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        base = ENCODER_CHANNELS + (ENCODER_CHANNELS[-1],) * max(0, depth - len(ENCODER_CHANNELS))
        kernels = ENCODER_KERNELS + (ENCODER_KERNELS[-1],) * max(0, depth - len(ENCODER_KERNELS))
        channels = [3] + [scale_channels(c, width) for c in base[:depth]]
        self.encoder = nn.ModuleList(
            EncoderLevel(channels[i], channels[i + 1], kernels[i], norm=i > 0, carafe=carafe) for i in range(depth)
        )
        self.decoder = nn.ModuleList(
            DecoderLevel(
                channels[i + 1], channels[i], channels[i] if i > 0 else 3,
                norm=i > 0, activation=nn.LeakyReLU(0.2, inplace=True) if i > 0 else None, carafe=carafe,
            )
            for i in reversed(range(depth))
        )

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        validity = hole_to_validity(mask)
        skips = [(image, validity)]
        for level in self.encoder:
            skips.append(level(*skips[-1]))
        x, x_validity = skips.pop()
        for level in self.decoder:
            x, x_validity = level(x, x_validity, *skips.pop())
        return torch.tanh(x)
