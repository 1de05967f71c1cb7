"""Classical baselines evaluated on the same images and masks as the networks.

- ``mean_fill``: every hole pixel gets the mean colour of the image's known pixels (the trivial fill).
- ``telea`` / ``navier_stokes``: OpenCV's ``cv2.inpaint`` (Telea's fast marching method and the
  Navier-Stokes based method), on the 8-bit image.

Each is a ``fill(image, mask) -> composited`` function for ``inpaint.metrics.evaluate``:
image (N, 3, H, W) in [-1, 1], hole mask (N, 1, H, W), 1 = hole.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from .composite import composite, hole_to_validity
from .visualize import to_uint8_image

INPAINT_RADIUS = 3  # pixels of known neighbourhood cv2.inpaint considers (OpenCV's documented example uses 3)


def mean_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Holes filled with the per-image, per-channel mean of the known pixels."""
    validity = hole_to_validity(mask)
    known = validity.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    mean = (image * validity).sum(dim=(2, 3), keepdim=True) / known
    return composite(image, mean.expand_as(image), mask)


def cv2_inpaint(image: torch.Tensor, mask: torch.Tensor, method: int, radius: int = INPAINT_RADIUS) -> torch.Tensor:
    """``cv2.inpaint`` with ``method`` (``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``) on each image."""
    outputs = []
    for one_image, one_mask in zip(image, mask, strict=True):
        hole = (one_mask[0].detach().cpu().numpy() > 0.5).astype(np.uint8) * 255
        filled = cv2.inpaint(to_uint8_image(one_image), hole, radius, method)
        outputs.append(torch.from_numpy(filled).permute(2, 0, 1).float() / 127.5 - 1)
    prediction = torch.stack(outputs).to(device=image.device, dtype=image.dtype)
    return composite(image, prediction, mask)


def telea(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return cv2_inpaint(image, mask, cv2.INPAINT_TELEA)


def navier_stokes(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return cv2_inpaint(image, mask, cv2.INPAINT_NS)


BASELINES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mean fill": mean_fill,
    "cv2 Telea": telea,
    "cv2 Navier-Stokes": navier_stokes,
}
