"""Argument validation shared by every CARAFE entry point.

Each check raises a ``TypeError`` or ``ValueError`` that names the argument and says what
was expected, so a wrong call fails at the API boundary instead of deep inside a kernel.
"""

from __future__ import annotations

import torch

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_int_arg(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int, or raise if it is not an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_kernel_size(kernel_size: object) -> int:
    """Reassembly windows are centred, so ``kernel_size`` must be a positive odd integer."""
    k = check_int_arg("kernel_size", kernel_size, 1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (the window is centred), got {k}")
    return k


def check_tensor(name: str, tensor: object) -> torch.Tensor:
    """A 4-D floating tensor of a supported dtype."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(tensor.shape)}")
    if tensor.dtype not in SUPPORTED_DTYPES:
        raise TypeError(
            f"{name} has unsupported dtype {tensor.dtype}; expected one of "
            "float16, bfloat16, float32, float64"
        )
    return tensor


def check_reassembly_args(
    features: torch.Tensor,
    masks: torch.Tensor,
    kernel_size: int,
    group_size: int,
    scale_factor: int,
    upsample: bool,
) -> tuple[int, int, int]:
    """Validate a reassembly call; returns ``(kernel_size, group_size, scale_factor)`` as ints."""
    check_tensor("features", features)
    check_tensor("masks", masks)
    k = check_kernel_size(kernel_size)
    groups = check_int_arg("group_size", group_size, 1)
    scale = check_int_arg("scale_factor", scale_factor, 1)
    if features.device != masks.device:
        raise ValueError(
            f"features and masks must be on the same device, got features on {features.device} "
            f"and masks on {masks.device}; move one with .to(device)"
        )
    if features.dtype != masks.dtype:
        raise TypeError(
            f"features and masks must have the same dtype, got features {features.dtype} and "
            f"masks {masks.dtype}; cast one with .to({features.dtype})"
        )
    n, c, h, w = features.shape
    if c % groups != 0:
        raise ValueError(f"features channels ({c}) must be divisible by group_size ({groups})")
    expected_channels = groups * k * k
    expected_size = (h * scale, w * scale) if upsample else (-(-h // scale), -(-w // scale))
    expected = (n, expected_channels, *expected_size)
    if tuple(masks.shape) != expected:
        raise ValueError(
            f"masks must have shape (N, group_size*kernel_size**2, H_out, W_out) = {expected} "
            f"for features {tuple(features.shape)}, kernel_size={k}, group_size={groups}, "
            f"scale_factor={scale} ({'up' if upsample else 'down'}sampling); got {tuple(masks.shape)}"
        )
    return k, groups, scale
