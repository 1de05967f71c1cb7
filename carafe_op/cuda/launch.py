"""Launch plans for the CUDA kernels: which instantiation, on which tensors, with which sizes.

Pure torch code (no CuPy, no GPU needed), so the layout decisions can be read and checked on
their own; ``carafe_op.cuda_backend`` turns a ``Launch`` into a CuPy kernel call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..layout import output_memory_format
from .kernels import kernel_name, vector_widths


@dataclass(frozen=True)
class Launch:
    """One kernel call: ``kernel`` is a name expression of the module for (dtype, ``channels_last``).
    Parameters, in the kernel's order: for each of ``tensors`` its data pointer and its (N, C, H, W)
    strides in elements, then ``sizes``, whose last entry is the number of work items. Holding the
    tensors here also keeps them alive until the launch is enqueued."""

    kernel: str
    channels_last: bool
    tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    sizes: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.sizes[-1]


def _channels_last(features: torch.Tensor) -> bool:
    return output_memory_format(features) == torch.channels_last


def _vectorisable(tensor: torch.Tensor, vec: int) -> bool:
    """Whether every run of ``vec`` channels starting at a multiple of ``vec`` is one aligned vector."""
    if tensor.size(1) > 1 and tensor.stride(1) != 1:
        return False
    if tensor.data_ptr() % (vec * tensor.element_size()):
        return False
    return all(tensor.size(d) == 1 or tensor.stride(d) % vec == 0 for d in (0, 2, 3))


def channels_per_thread(
    dtype: torch.dtype, channels_last: bool, group_channels: int, vector_tensors: tuple[torch.Tensor, ...]
) -> int:
    """The wide instantiation when each group's channels split evenly into vectors (and, for vector
    loads and stores, every tensor accessed with them is aligned); otherwise 1."""
    wide = vector_widths(dtype, channels_last)[1]
    if group_channels % wide or not all(_vectorisable(t, wide) for t in vector_tensors):
        return 1
    return wide


_INT32_LIMIT = 2**31


def _sizes(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int, scale_factor: int,
    upsample: bool, total: int,
) -> tuple[int, ...]:
    """The kernels' size parameters. Offsets and the work index are 64-bit, but per-axis
    coordinates are 32-bit: rows (N*H) and items per row (channels or taps times W) must fit."""
    n, channels, in_h, in_w = features.shape
    out_h, out_w = masks.shape[-2:]
    rows = n * max(in_h, out_h)
    row_items = max(channels, masks.shape[1]) * max(in_w, out_w)
    if rows >= _INT32_LIMIT or row_items >= _INT32_LIMIT:
        raise ValueError(
            f"CUDA CARAFE needs N*H < 2**31 and max(C, G*k*k)*W < 2**31 (per-axis indices are 32-bit); "
            f"got N*H={rows} and max(C, G*k*k)*W={row_items} for features {tuple(features.shape)} "
            f"and masks {tuple(masks.shape)}"
        )
    return (channels, in_h, in_w, out_h, out_w, kernel_size, group_size, scale_factor, int(upsample), total)


def forward_launch(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int, scale_factor: int,
    upsample: bool,
) -> tuple[torch.Tensor, Launch]:
    """Allocates the output (in ``layout.output_memory_format``) and plans the forward kernel."""
    n, channels = features.shape[:2]
    out_h, out_w = masks.shape[-2:]
    channels_last = _channels_last(features)
    out = torch.empty(
        (n, channels, out_h, out_w), dtype=features.dtype, device=features.device,
        memory_format=torch.channels_last if channels_last else torch.contiguous_format,
    )
    vector_tensors = (features, out) if channels_last else ()
    vec = channels_per_thread(features.dtype, channels_last, channels // group_size, vector_tensors)
    total = n * out_h * out_w * (channels // vec)
    launch = Launch(
        kernel_name("reassemble_forward", features.dtype, vec, channels_last),
        channels_last,
        (features, masks, out),
        _sizes(features, masks, kernel_size, group_size, scale_factor, upsample, total),
    )
    return out, launch


def backward_launches(
    grad_output: torch.Tensor, features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
    scale_factor: int, upsample: bool,
) -> tuple[torch.Tensor, torch.Tensor, tuple[Launch, Launch]]:
    """Allocates both gradients (channels-last) and plans the two gather kernels that fill them.

    In the channels-last layout ``grad_output`` is read with vector loads, so it is made
    channels-last first (a copy only when autograd hands over another layout); in the planar
    layout any strides are read in place.
    """
    n, channels, in_h, in_w = features.shape
    out_h, out_w = masks.shape[-2:]
    channels_last = _channels_last(features)
    if channels_last:
        grad_output = grad_output.contiguous(memory_format=torch.channels_last)
    grad_features = torch.empty_like(features, memory_format=torch.channels_last)
    grad_masks = torch.empty_like(masks, memory_format=torch.channels_last)
    vector_tensors = (features, grad_output, grad_features) if channels_last else (grad_features,)
    vec = channels_per_thread(features.dtype, channels_last, channels // group_size, vector_tensors)
    features_total = n * in_h * in_w * (channels // vec)
    masks_total = n * out_h * out_w * masks.shape[1]
    launches = (
        Launch(
            kernel_name("reassemble_backward_features", features.dtype, vec, channels_last),
            channels_last,
            (grad_output, masks, grad_features),
            _sizes(features, masks, kernel_size, group_size, scale_factor, upsample, features_total),
        ),
        Launch(
            kernel_name("reassemble_backward_masks", features.dtype, vec, channels_last),
            channels_last,
            (grad_output, features, grad_masks),
            _sizes(features, masks, kernel_size, group_size, scale_factor, upsample, masks_total),
        ),
    )
    return grad_features, grad_masks, launches
