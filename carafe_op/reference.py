"""Pure-PyTorch CARAFE / CARAFE++ reassembly (SPEC §1).

Used as the ground truth in tests, as the fallback where the compiled kernels cannot run,
and as the traceable form for ONNX export. It loops over the k² taps and accumulates one
shifted copy of the input per tap, so it never builds a k²-sized tensor in the forward
pass; autograd does keep each tap's slice for the backward pass, which is why the
compiled kernels exist.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .layout import output_memory_format


def reassemble_reference(
    features: torch.Tensor,
    masks: torch.Tensor,
    kernel_size: int,
    group_size: int,
    scale_factor: int,
    upsample: bool,
) -> torch.Tensor:
    """Reassemble ``features`` with per-location kernels ``masks``.

    ``upsample=True`` is CARAFE (source of output ``y`` is ``y // s``); ``False`` is CARAFE++
    downsampling (source ``s * y``). Taps outside the map read zero. Arguments are assumed
    valid (see ``checks.check_reassembly_args``).

    Upsampling works on the (H, s, W, s) view of the output grid, so each tap's window
    broadcasts over the s x s outputs that share its source instead of being repeated.
    """
    n, c, in_h, in_w = features.shape
    out_h, out_w = masks.shape[-2:]
    k, groups, s = kernel_size, group_size, scale_factor
    radius = (k - 1) // 2
    padded = F.pad(features, (radius, radius, radius, radius)).reshape(n, groups, c // groups, in_h + 2 * radius, -1)
    if upsample:
        kernels = masks.reshape(n, groups, 1, k * k, in_h, s, in_w, s)
        output = features.new_zeros(n, groups, c // groups, in_h, s, in_w, s)
    else:
        kernels = masks.reshape(n, groups, 1, k * k, out_h, out_w)
        output = features.new_zeros(n, groups, c // groups, out_h, out_w)
    for row in range(k):
        for col in range(k):
            tap = kernels[:, :, :, row * k + col]
            if upsample:
                window = padded[..., row:row + in_h, col:col + in_w].unsqueeze(-1).unsqueeze(-3)
            else:
                window = padded[..., row:row + s * (out_h - 1) + 1:s, col:col + s * (out_w - 1) + 1:s]
            output = output + tap * window
    return output.reshape(n, c, out_h, out_w)

def forward(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
    scale_factor: int, upsample: bool,
) -> torch.Tensor:
    """Backend entry point: the reference output in the layout contract's memory format."""
    output = reassemble_reference(features, masks, kernel_size, group_size, scale_factor, upsample)
    return output.contiguous(memory_format=output_memory_format(features))


def backward(
    grad_output: torch.Tensor, features: torch.Tensor, masks: torch.Tensor, kernel_size: int,
    group_size: int, scale_factor: int, upsample: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backend entry point: both gradients by autograd through the reference, in the inputs' formats."""
    with torch.enable_grad():
        features = features.detach().requires_grad_()
        masks = masks.detach().requires_grad_()
        output = reassemble_reference(features, masks, kernel_size, group_size, scale_factor, upsample)
        grad_features, grad_masks = torch.autograd.grad(output, (features, masks), grad_output)
    return (
        grad_features.contiguous(memory_format=output_memory_format(features)),
        grad_masks.contiguous(memory_format=output_memory_format(masks)),
    )
