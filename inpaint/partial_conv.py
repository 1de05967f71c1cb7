"""Partial convolution (Liu et al., ECCV 2018): a convolution that only reads valid pixels.

The output at each location is computed from the valid taps of its window and rescaled by
``window size / valid count``, so it does not depend on how many holes the window covers;
a location whose window saw no valid pixel becomes a hole (output 0, validity 0). Validity
masks use 1 = valid; they may have one channel (shared by every input channel) or one per
input channel (after features with different masks are concatenated).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` with partial-convolution renormalisation and mask update.

    ``forward(x, validity)`` returns ``(output, new_validity)``; ``new_validity`` is
    (N, 1, H_out, W_out) because the update is the same for every output channel.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.groups != 1 or self.padding_mode != "zeros":
            raise ValueError("PartialConv2d supports groups=1 and padding_mode='zeros' only")

    def valid_count(self, validity: torch.Tensor) -> torch.Tensor:
        """Number of valid (channel, tap) pairs in each output location's window."""
        ones = validity.new_ones(1, validity.shape[1], *self.kernel_size)
        return F.conv2d(validity, ones, None, self.stride, self.padding, self.dilation)

    def forward(self, x: torch.Tensor, validity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        if validity.dim() != 4 or validity.shape[1] not in (1, x.shape[1]) or validity.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"validity must have shape (N, 1 or {x.shape[1]}, {x.shape[-2]}, {x.shape[-1]}) to match x "
                f"{tuple(x.shape)}, got {tuple(validity.shape)}"
            )
        with torch.no_grad():
            count = self.valid_count(validity)
            new_validity = (count > 0).to(x.dtype)
            window = validity.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            scale = window / count.clamp_min(1.0) * new_validity
        out = F.conv2d(x * validity, self.weight, None, self.stride, self.padding, self.dilation) * scale
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_validity
        return out, new_validity
