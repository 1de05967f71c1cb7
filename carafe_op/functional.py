"""Public functional API: validated CARAFE upsampling, CARAFE++ downsampling, mask-aware form.

During export (``torch.onnx.export`` or ``torch.export``) the reassembly is traced through
the pure-tensor-op reference, so exported graphs contain only standard operators.
"""

from __future__ import annotations

from typing import Literal

import torch

from .checks import check_reassembly_args, check_tensor
from .dispatch import reassemble
from .reference import reassemble_reference


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def _reassemble(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
    scale_factor: int, upsample: bool,
) -> torch.Tensor:
    k, groups, scale = check_reassembly_args(features, masks, kernel_size, group_size, scale_factor, upsample)
    if _exporting():
        return reassemble_reference(features, masks, k, groups, scale, upsample)
    return reassemble(features, masks, k, groups, scale, upsample)


def carafe(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int, scale_factor: int
) -> torch.Tensor:
    """CARAFE content-aware upsampling, with the semantics of ``mmcv.ops.carafe``.

    Args:
        features: (N, C, H, W) input, C divisible by ``group_size``.
        masks: (N, group_size * kernel_size**2, s*H, s*W) reassembly kernels, already
            normalised; channel ``g*k*k + (i+r)*k + (j+r)`` weighs tap (i, j) of group g.
        kernel_size: odd reassembly window k.
        group_size: number of channel groups G sharing one kernel.
        scale_factor: integer upsampling ratio s >= 1 (1 = plain reassembly).

    Returns:
        (N, C, s*H, s*W); output (y, x) reads the k x k window around (y // s, x // s),
        zero outside the map.
    """
    return _reassemble(features, masks, kernel_size, group_size, scale_factor, upsample=True)


def carafe_down(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int, scale_factor: int
) -> torch.Tensor:
    """CARAFE++ content-aware downsampling.

    ``masks`` is (N, group_size * kernel_size**2, ceil(H/s), ceil(W/s)); output (y, x)
    reads the k x k window around (s*y, s*x), zero outside the map. Returns
    (N, C, ceil(H/s), ceil(W/s)).
    """
    return _reassemble(features, masks, kernel_size, group_size, scale_factor, upsample=False)


def carafe_masked(
    features: torch.Tensor,
    validity: torch.Tensor,
    masks: torch.Tensor,
    kernel_size: int,
    group_size: int,
    scale_factor: int,
    direction: Literal["up", "down"] = "up",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask-aware reassembly for partial-convolution networks (SPEC §1).

    ``validity`` is (N, 1, H, W) or (N, C, H, W), 1 = valid pixel, 0 = hole. The validity is
    reassembled with the same kernels; features are taken from valid taps only and
    renormalised by that reassembled validity, and an output whose taps are all holes is 0
    and stays a hole.

    Returns:
        ``(output, new_validity)``: the output has the shape of ``carafe`` / ``carafe_down``;
        ``new_validity`` is a 0/1 tensor with ``validity``'s channel count at output size.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    n, c, h, w = check_tensor("features", features).shape
    check_tensor("validity", validity)
    if validity.shape[0] != n or validity.shape[-2:] != features.shape[-2:] or validity.shape[1] not in (1, c):
        raise ValueError(
            f"validity must have shape (N, 1, H, W) or (N, C, H, W) matching features "
            f"{tuple(features.shape)}, got {tuple(validity.shape)}"
        )
    if validity.dtype != features.dtype or validity.device != features.device:
        raise TypeError(
            f"validity must match features' dtype and device ({features.dtype} on {features.device}), "
            f"got {validity.dtype} on {validity.device}; cast it with .to(features)"
        )
    upsample = direction == "up"
    numerator = _reassemble(features * validity, masks, kernel_size, group_size, scale_factor, upsample)
    out_h, out_w = numerator.shape[-2:]
    if validity.shape[1] == 1:
        # One validity channel per group; each group's channels share its reassembled validity.
        groups = group_size
        weight = _reassemble(validity.expand(n, groups, h, w), masks, kernel_size, groups, scale_factor, upsample)
        weight_per_channel = weight.unsqueeze(2)
        numerator = numerator.reshape(n, groups, c // groups, out_h, out_w)
    else:
        weight = _reassemble(validity, masks, kernel_size, group_size, scale_factor, upsample)
        weight_per_channel = weight
    valid = weight_per_channel > 0
    output = torch.where(valid, numerator / weight_per_channel.clamp_min(torch.finfo(weight.dtype).tiny), 0.0)
    new_validity = (weight > 0).to(validity.dtype)
    if validity.shape[1] == 1:
        new_validity = new_validity.amax(dim=1, keepdim=True)
    return output.reshape(n, c, out_h, out_w), new_validity
