"""Mask utilities: input checks, the generator's input and the output composition.

Masks follow the application's convention, 1 = hole. Partial convolutions and the
mask-aware CARAFE++ use validity (1 = valid) instead; ``hole_to_validity`` is the one place
that converts between them, and ``composite`` the one place that pastes a prediction into
the holes: ``Ŷ = X ⊙ (1 − M) + G(X) ⊙ M``.
"""

from __future__ import annotations

import torch


def check_image(image: torch.Tensor, debug: bool = False) -> torch.Tensor:
    """An (N, 3, H, W) floating image; with ``debug`` its values must lie in [-1, 1]."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must have shape (N, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a floating tensor scaled to [-1, 1], got dtype {image.dtype}")
    if debug:
        low, high = image.min().item(), image.max().item()
        if low < -1.0 - 1e-6 or high > 1.0 + 1e-6:
            raise ValueError(f"image values must lie in [-1, 1], got range [{low:.4g}, {high:.4g}]")
    return image


def check_mask(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Validate a hole mask (1 = hole) for ``image``; returns it as 0/1 in the image's dtype.

    Accepts (N, 1, H, W) masks with values 0/1, or 0/255 (8-bit masks), which are scaled to 0/1.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be single-channel with shape (N, 1, H, W), got {tuple(mask.shape)}")
    if mask.shape[0] != image.shape[0] or mask.shape[-2:] != image.shape[-2:]:
        raise ValueError(
            f"mask must match the image's batch and size {(image.shape[0], 1, *image.shape[-2:])}, "
            f"got {tuple(mask.shape)}"
        )
    mask = mask.to(image.dtype)
    if mask.numel() and mask.max() > 1:
        mask = mask / 255
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError("mask must be binary: values 0/1 or 0/255 (1 or 255 = hole)")
    return mask


def hole_to_validity(mask: torch.Tensor) -> torch.Tensor:
    """Hole mask (1 = hole) to validity mask (1 = valid), and back: the mapping is its own inverse."""
    return 1 - mask


def mask_image(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The image with its holes set to 0 (mid-grey in [-1, 1]): all a generator may see of it."""
    return image * hole_to_validity(mask)


def generator_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked image plus the hole mask as a fourth channel, (N, 4, H, W)."""
    return torch.cat([mask_image(image, mask), mask], dim=1)


def composite(image: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from ``image``, hole pixels from ``prediction``: ``X ⊙ (1 − M) + G(X) ⊙ M``."""
    return mask_image(image, mask) + prediction * mask
