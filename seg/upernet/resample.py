"""x2 upsamplers that resize to an exact target size, so odd-sized skip connections match.

Every upsampling point of UperNet takes ``(x, size)``: interpolation resizes straight to
``size``; CARAFE++ upsamples by 2 and crops to ``size`` (which must lie in (2H - 2, 2H]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from carafe_op import CARAFEUpsample


class CARAFEResize(CARAFEUpsample):
    """CARAFE++ x2 upsampling cropped to ``size`` (kernel 5, encoder 3, compressed 64).

    Callers pass sizes in (2H - 2, 2H] by construction (a skip connection or ``half_size``).
    """

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, output_size=size)


class InterpolateResize(nn.Module):
    """``F.interpolate`` to ``size`` (bilinear with ``align_corners=False``, as in mmseg, or nearest)."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        align = False if self.mode == "bilinear" else None
        return F.interpolate(x, size=size, mode=self.mode, align_corners=align)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


def make_upsampler(mode: str, channels: int) -> nn.Module:
    """CARAFE++ for ``mode == "carafe"``, else interpolation with that mode."""
    return CARAFEResize(channels) if mode == "carafe" else InterpolateResize(mode)


def half_size(size: torch.Size | tuple[int, int]) -> tuple[int, int]:
    """``ceil(size / 2)``: a x2 upsampling of it covers ``size`` and is cropped back to it."""
    return ((size[0] + 1) // 2, (size[1] + 1) // 2)
