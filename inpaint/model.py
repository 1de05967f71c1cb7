"""Builders for the generators and the discriminator, and ``Inpainter``: checks, generator, composite."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import nn

from .composite import check_image, check_mask, composite
from .discriminator import PatchDiscriminator
from .generators import GlobalLocalGenerator, PConvUNet

GeneratorName = Literal["global_local", "pconv_unet"]
GENERATORS = ("global_local", "pconv_unet")
DEFAULT_DEPTH = {"global_local": 4, "pconv_unet": 7}


def build_generator(
    name: GeneratorName = "global_local", carafe: bool = False, width: float = 1.0, depth: int | None = None
) -> nn.Module:
    """One of the four generators: Global&Local or Partial-Conv U-Net, each baseline or CARAFE++.

    ``width`` multiplies every channel count. ``depth``: for ``global_local`` the number of
    dilated layers (dilations 2, 4, 8, ..., default 4); for ``pconv_unet`` the number of x2
    levels (default 7, right for 256x256).
    """
    if name not in GENERATORS:
        raise ValueError(f"generator name must be one of {GENERATORS}, got {name!r}")
    if not isinstance(width, (int, float)) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    depth = DEFAULT_DEPTH[name] if depth is None else depth
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < (0 if name == "global_local" else 1):
        raise ValueError(f"depth for {name} must be an integer >= {0 if name == 'global_local' else 1}, got {depth!r}")
    if name == "global_local":
        return GlobalLocalGenerator(carafe, width, dilations=tuple(2 ** (i + 1) for i in range(depth)))
    return PConvUNet(carafe, width, depth)


def build_discriminator(width: float = 1.0, num_downsamples: int = 3, with_mask: bool = True) -> PatchDiscriminator:
    """Spectral-normalised PatchGAN over the composited image (and the hole mask)."""
    if not isinstance(width, (int, float)) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    return PatchDiscriminator(width, num_downsamples, with_mask)


class InpaintResult(NamedTuple):
    prediction: torch.Tensor  # the generator's raw output, (N, 3, H, W) in [-1, 1]
    composited: torch.Tensor  # known pixels from the input, holes from the prediction
    mask: torch.Tensor  # the validated hole mask, 0/1 in the image's dtype


class Inpainter(nn.Module):
    """Validates inputs, runs the generator and composites its prediction into the holes.

    ``forward(image, mask)``: image (N, 3, H, W) in [-1, 1], hole mask (N, 1, H, W) with values
    0/1 or 0/255 (1 = hole). ``debug=True`` also checks the image's value range.
    """

    def __init__(self, generator: nn.Module, debug: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.debug = debug

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> InpaintResult:
        image = check_image(image, self.debug)
        mask = check_mask(mask, image)
        prediction = self.generator(image, mask)
        return InpaintResult(prediction, composite(image, prediction, mask), mask)
