"""Encoders with the smp-style contract (``out_channels``, ``output_stride``)."""

from .resnet import BACKBONE_RESAMPLERS, BACKBONES, ResNetEncoder

__all__ = ["BACKBONES", "BACKBONE_RESAMPLERS", "ResNetEncoder"]
