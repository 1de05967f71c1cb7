"""Colour overlays of segmentations: label maps blended onto images, and input | GT | prediction strips."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from datasets.ade20k import IMAGENET_MEAN, IMAGENET_STD, colorize

IGNORE_INDEX = 255


def denormalize(image: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """A normalised (3, H, W) float tensor back to an (H, W, 3) uint8 RGB image."""
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) tensor, got {tuple(image.shape)}")
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    rgb = (image.detach().float().cpu() * s + m).clamp(0, 1) * 255.0
    return rgb.round().byte().permute(1, 2, 0).numpy()


def overlay(image: np.ndarray, label: np.ndarray | torch.Tensor, palette: Sequence[Sequence[int]],
            alpha: float = 0.5, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``image`` (H, W, 3 uint8) with ``label``'s class colours blended in at ``alpha``; ignore pixels
    keep the plain image."""
    lbl = label.cpu().numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
    if lbl.shape != image.shape[:2]:
        raise ValueError(f"label is {lbl.shape} but image is {image.shape[:2]}; they must be the same size")
    colours = colorize(lbl, palette, ignore_index).astype(np.float32)
    blend = image.astype(np.float32) * (1 - alpha) + colours * alpha
    blend[lbl == ignore_index] = image[lbl == ignore_index]
    return blend.round().clip(0, 255).astype(np.uint8)


def comparison_strip(image: np.ndarray, label: np.ndarray | torch.Tensor, pred: np.ndarray | torch.Tensor,
                     palette: Sequence[Sequence[int]], ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """input | ground truth overlay | prediction overlay, side by side, separated by white bars."""
    gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([image, gap, overlay(image, label, palette, ignore_index=ignore_index), gap,
                           overlay(image, pred, palette, ignore_index=ignore_index)], axis=1)
