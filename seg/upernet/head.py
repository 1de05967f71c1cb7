"""Prediction heads: the classifier (dropout + 1x1 conv, resized to the input) and mmseg's
auxiliary FCN head on backbone stage 4 (C4), whose loss weight is ``AUX_LOSS_WEIGHT``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

AUX_LOSS_WEIGHT = 0.4


class Classifier(nn.Module):
    """Dropout, 1x1 conv to class logits, bilinear resize to ``size`` (the input image)."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout2d(dropout)
        self.conv = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        logits = self.conv(self.dropout(x))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class FCNAuxHead(nn.Module):
    """mmseg's auxiliary ``FCNHead`` (one 3x3 conv-BN-ReLU, no input concat) plus a classifier."""

    def __init__(self, in_channels: int, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.conv = Conv2dNormActivation(in_channels, channels, 3)
        self.classifier = Classifier(channels, num_classes, dropout)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.classifier(self.conv(x), size)
