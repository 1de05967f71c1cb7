"""Inpainting generators. Contract: ``forward(image, mask) -> prediction``, where ``mask`` is the
(N, 1, H, W) hole mask (1 = hole), hole pixels of ``image`` are never read, and the
prediction is (N, 3, H, W) in [-1, 1] (composite it with ``inpaint.composite``)."""

from .global_local import GlobalLocalGenerator
from .pconv_unet import PConvUNet

__all__ = ["GlobalLocalGenerator", "PConvUNet"]
