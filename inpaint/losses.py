"""Inpainting losses: masked L1, adversarial objectives, total variation, VGG perceptual/style.

Images are in [-1, 1] and masks are hole masks (1 = hole). The L1 terms follow Partial
Conv's definition: mean over all elements of the masked absolute error, so the hole term
grows with the hole's area. The perceptual/style loss needs VGG-16 weights from a local file
(torchvision's ``vgg16`` state dict); nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

AdversarialMode = Literal["mask_aware", "hinge", "lsgan"]
ADVERSARIAL_MODES = ("mask_aware", "hinge", "lsgan")


def hole_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| on hole pixels (divided by all elements, as in Partial Conv)."""
    return (mask * (prediction - target)).abs().mean()


def valid_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |prediction − target| on known pixels (divided by all elements)."""
    return ((1 - mask) * (prediction - target)).abs().mean()


def total_variation(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, over pairs that touch a hole pixel.

    Applied to the composited image it smooths the seams and the filled region (Partial Conv's
    TV term uses the hole dilated by one pixel, which is what "touch" means here).
    """
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs() * torch.maximum(mask[..., :, 1:], mask[..., :, :-1])
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs() * torch.maximum(mask[..., 1:, :], mask[..., :-1, :])
    return dx.mean() + dy.mean()


def mask_aware_target(mask: torch.Tensor, size: tuple[int, int], sigma: float = 10.0) -> torch.Tensor:
    """AOT-GAN's soft target for fake patches: the hole mask blurred (Gaussian, ``sigma`` pixels)
    and averaged down to the logit grid, so patches are "fake" in proportion to their holes."""
    from torchvision.transforms.functional import gaussian_blur

    kernel = min(2 * int(3 * sigma) + 1, 2 * min(mask.shape[-2:]) - 1)  # reflect padding must fit
    blurred = gaussian_blur(mask, [kernel, kernel], [sigma, sigma]) if sigma > 0 else mask
    return F.adaptive_avg_pool2d(blurred, size)


class AdversarialLoss:
    """Discriminator and generator objectives on patch logits.

    - ``mask_aware`` (AOT-GAN): least squares; the discriminator regresses real patches to 0
      and fake patches to ``mask_aware_target``; the generator pushes fake patches to 1,
      weighted by that target, so only patches with holes are pushed.
    - ``hinge``: SN-PatchGAN / DeepFill v2.
    - ``lsgan``: least squares, real → 1, fake → 0.
    """

    def __init__(self, mode: AdversarialMode = "mask_aware", sigma: float = 10.0) -> None:
        if mode not in ADVERSARIAL_MODES:
            raise ValueError(f"adversarial mode must be one of {ADVERSARIAL_MODES}, got {mode!r}")
        self.mode = mode
        self.sigma = sigma

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        if self.mode == "lsgan":
            return (real_logits - 1).square().mean() + fake_logits.square().mean()
        target = mask_aware_target(mask, fake_logits.shape[-2:], self.sigma)
        return real_logits.square().mean() + (fake_logits - target).square().mean()

    def generator(self, fake_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return -fake_logits.mean()
        if self.mode == "lsgan":
            return (fake_logits - 1).square().mean()
        weight = mask_aware_target(mask, fake_logits.shape[-2:], self.sigma)
        return ((fake_logits - 1).square() * weight).mean() / weight.mean().clamp_min(1e-8)


class VGGFeatures(nn.Module):
    """VGG-16 activations after pool1, pool2, pool3 (Partial Conv's perceptual layers), frozen.

    ``weights_path`` is a local torchvision ``vgg16`` state dict (keys ``features.N.*``).
    """

    LAST_LAYER = 16
    TAPS = (4, 9, 16)

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import vgg16

        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG-16 weights file not found: {path} (weights are never downloaded)")
        with torch.device("meta"):  # no random init of the 138M-parameter model; the file fills it
            self.layers = vgg16(weights=None).features[: self.LAST_LAYER + 1]
        state = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "features."
        own = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
        own = {k: v for k, v in own.items() if int(k.split(".")[0]) <= self.LAST_LAYER}
        try:
            self.layers.load_state_dict(own, assign=True)
        except RuntimeError as error:
            raise ValueError(f"{path} is not a torchvision VGG-16 state dict: {error}") from error
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)  # always frozen

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image + 1) / 2 - self.mean) / self.std
        features = []
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self.TAPS:
                features.append(x)
        return features


def gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


@dataclass
class LossWeights:
    """Weights of the generator's loss terms (0 switches a term off). Defaults: Partial Conv's
    hole/valid/TV balance, a light adversarial term, perceptual and style off."""

    hole: float = 6.0
    valid: float = 1.0
    adversarial: float = 0.1
    tv: float = 0.0
    perceptual: float = 0.0
    style: float = 0.0


class InpaintingLoss(nn.Module):
    """Generator loss (weighted sum, per-term values returned too) and discriminator loss.

    ``vgg_weights`` (local file) is required when ``weights.perceptual`` or ``weights.style`` > 0.
    """

    def __init__(
        self,
        weights: LossWeights | None = None,
        adversarial: AdversarialMode = "mask_aware",
        vgg_weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        self.adversarial = AdversarialLoss(adversarial)
        self.vgg: VGGFeatures | None = None
        if self.weights.perceptual > 0 or self.weights.style > 0:
            if vgg_weights is None:
                raise ValueError("vgg_weights (a local VGG-16 state dict file) is required for perceptual/style losses")
            self.vgg = VGGFeatures(vgg_weights)

    def generator_loss(
        self,
        prediction: torch.Tensor,
        composited: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
        fake_logits: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Terms and their weighted ``total``. ``fake_logits``: the discriminator on ``composited``."""
        w = self.weights
        terms = {"hole": hole_l1(prediction, target, mask), "valid": valid_l1(prediction, target, mask)}
        if w.tv > 0:
            terms["tv"] = total_variation(composited, mask)
        if w.adversarial > 0 and fake_logits is not None:
            terms["adversarial"] = self.adversarial.generator(fake_logits, mask)
        if self.vgg is not None:
            real_features = self.vgg(target)
            outputs = [self.vgg(prediction), self.vgg(composited)]
            if w.perceptual > 0:
                terms["perceptual"] = sum(
                    F.l1_loss(f, r) for out in outputs for f, r in zip(out, real_features, strict=True)
                )
            if w.style > 0:
                terms["style"] = sum(
                    F.l1_loss(gram(f), gram(r)) for out in outputs for f, r in zip(out, real_features, strict=True)
                )
        terms["total"] = sum(getattr(w, name) * value for name, value in terms.items())
        return terms

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        return self.adversarial.discriminator(real_logits, fake_logits, mask)
