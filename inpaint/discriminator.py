"""Spectral-normalised PatchGAN discriminator over the composited image and the hole mask.

Stride-2 4x4 convs (64, 128, 256 channels at width 1), one stride-1 4x4 conv (512) and a
4x4 conv to one logit per patch, LeakyReLU 0.2 in between, every conv spectral-normalised
(as in DeepFill v2's SN-PatchGAN and AOT-GAN). Which objective the logits feed — the
mask-aware target or hinge / LSGAN — is chosen in ``inpaint.losses``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .generators.common import scale_channels


class PatchDiscriminator(nn.Module):
    """``forward(image, mask) -> logits`` of shape (N, 1, h, w), one per receptive-field patch.

    ``num_downsamples`` stride-2 layers; ``with_mask=False`` ignores the mask (image only).
    """

    def __init__(self, width: float = 1.0, num_downsamples: int = 3, with_mask: bool = True) -> None:
        super().__init__()
        if num_downsamples < 1:
            raise ValueError(f"num_downsamples must be >= 1, got {num_downsamples}")
        self.with_mask = with_mask
        channels = [4 if with_mask else 3] + [scale_channels(64 * 2**i, width) for i in range(num_downsamples + 1)]
        layers: list[nn.Module] = []
        for i in range(num_downsamples + 1):
            stride = 2 if i < num_downsamples else 1
            layers += [spectral_norm(nn.Conv2d(channels[i], channels[i + 1], 4, stride, 1)), nn.LeakyReLU(0.2)]
        layers.append(spectral_norm(nn.Conv2d(channels[-1], 1, 4, 1, 1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.with_mask:
            if mask is None:
                raise ValueError("mask is required: this discriminator was built with with_mask=True")
            image = torch.cat([image, mask], dim=1)
        return self.layers(image)
