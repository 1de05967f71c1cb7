"""Image inpainting with CARAFE++: Global&Local and Partial-Conv U-Net generators (baseline
and CARAFE++), a spectral-normalised PatchGAN discriminator and the losses (paper §4.3)."""

from .composite import check_image, check_mask, composite, generator_input, hole_to_validity, mask_image
from .discriminator import PatchDiscriminator
from .generators import GlobalLocalGenerator, PConvUNet
from .losses import AdversarialLoss, InpaintingLoss, LossWeights
from .model import GENERATORS, Inpainter, InpaintResult, build_discriminator, build_generator
from .partial_conv import PartialConv2d

__all__ = [
    "GENERATORS",
    "AdversarialLoss",
    "GlobalLocalGenerator",
    "InpaintResult",
    "Inpainter",
    "InpaintingLoss",
    "LossWeights",
    "PConvUNet",
    "PartialConv2d",
    "PatchDiscriminator",
    "build_discriminator",
    "build_generator",
    "check_image",
    "check_mask",
    "composite",
    "generator_input",
    "hole_to_validity",
    "mask_image",
]
