"""Image grids for inspection: one row per sample, columns masked input | output | composite | ground truth."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

COLUMNS = ("masked input", "output", "composite", "ground truth")


def masked_input_view(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The image with its holes painted white, as a user would draw them (all [-1, 1])."""
    return image * (1 - mask) + mask


def inpainting_grid(
    image: torch.Tensor, mask: torch.Tensor, prediction: torch.Tensor, composited: torch.Tensor, padding: int = 2
) -> torch.Tensor:
    """A uint8 (3, H', W') grid: row i shows sample i's ``COLUMNS`` (inputs (N, 3|1, H, W) in [-1, 1])."""
    n = image.shape[0]
    if not (mask.shape[0] == prediction.shape[0] == composited.shape[0] == n):
        raise ValueError("image, mask, prediction and composited must hold the same number of samples")
    columns = [masked_input_view(image, mask), prediction, composited, image]
    tiles = torch.stack([c.detach().float().cpu() for c in columns], dim=1).flatten(0, 1)  # row-major: sample, column
    grid = make_grid((tiles.clamp(-1, 1) + 1) / 2, nrow=len(columns), padding=padding, pad_value=1.0)
    return (grid * 255).round().to(torch.uint8)


def save_image(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Write a uint8 (3, H, W) tensor as an 8-bit RGB PNG (parent folders created)."""
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image.permute(1, 2, 0).numpy())).save(path)


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """One (3, H, W) image in [-1, 1] → (H, W, 3) uint8."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
