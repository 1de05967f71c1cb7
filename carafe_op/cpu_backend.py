"""CPU backend: torch tensors in, numba kernels (``cpu_kernels``) on numpy views.

fp32 and fp64 run natively; fp16 and bf16 are computed in fp32 and cast back.
Outputs and gradients follow ``layout.output_memory_format`` of the tensor they belong to; their
buffers are reused from call to call (``buffer_pool``) and ask for huge pages (``huge_pages``).
Features, outputs and their gradients go to the planar kernels, or to the channels-last
kernels when that format is channels-last; the predicted kernels are always planar. The
kernels run on torch's intra-op threads, as many as ``torch.get_num_threads()`` (``thread_team``).
"""

from __future__ import annotations

import numpy as np
import torch

from . import cpu_kernels
from .buffer_pool import empty
from .layout import output_memory_format
from .thread_team import run


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def _array(tensor: torch.Tensor, dtype: torch.dtype, channels_last: bool = False) -> np.ndarray:
    """A C-contiguous numpy view, (N, H, W, C) when ``channels_last`` else (N, C, H, W); copies
    only when the layout requires it."""
    tensor = tensor.detach().to(dtype)
    return (tensor.permute(0, 2, 3, 1) if channels_last else tensor).contiguous().numpy()


def _output_buffer(shape: tuple[int, ...], dtype: torch.dtype, channels_last: bool) -> tuple[torch.Tensor, np.ndarray]:
    """An (N, C, H, W) tensor in the requested memory format, and the array the kernels write:
    its (N, H, W, C) view when channels-last, else the tensor itself."""
    tensor = empty(shape, dtype, torch.channels_last if channels_last else torch.contiguous_format)
    return tensor, (tensor.permute(0, 2, 3, 1) if channels_last else tensor).numpy()


def forward(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
    scale_factor: int, upsample: bool,
) -> torch.Tensor:
    dtype = _compute_dtype(features.dtype)
    channels_last = output_memory_format(features) == torch.channels_last
    x = _array(features, dtype, channels_last)
    n, c = features.shape[:2]
    out, out_array = _output_buffer((n, c, *masks.shape[-2:]), dtype, channels_last)
    threads = torch.get_num_threads()
    w = _array(masks, dtype)
    static_k, static_scale = cpu_kernels.static_size(kernel_size), cpu_kernels.static_size(scale_factor)
    if channels_last:
        run(cpu_kernels.nhwc_forward, x, w, out_array, kernel_size, group_size, scale_factor, upsample,
            threads=threads)
    elif upsample:
        run(cpu_kernels.planar_upsample_forward, x, w, out_array, kernel_size, static_k, static_scale,
            group_size, threads=threads)
    else:
        task_rows = cpu_kernels.downsample_task_rows(n, out.shape[2], threads)
        run(cpu_kernels.planar_downsample_forward, x, w, out_array, static_k, static_scale, group_size,
            task_rows, threads=threads)
    return out.to(features.dtype)


def backward(
    grad_output: torch.Tensor, features: torch.Tensor, masks: torch.Tensor, kernel_size: int,
    group_size: int, scale_factor: int, upsample: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = _compute_dtype(features.dtype)
    channels_last = output_memory_format(features) == torch.channels_last
    grad = _array(grad_output, dtype, channels_last)
    x = _array(features, dtype, channels_last)
    w = _array(masks, dtype)
    grad_features, grad_features_array = _output_buffer(tuple(features.shape), dtype, channels_last)
    grad_masks = empty(w.shape, dtype)
    config = (kernel_size, group_size, scale_factor, upsample)
    static_scale = cpu_kernels.static_size(scale_factor)
    threads = torch.get_num_threads()
    # The mask gradient goes first: it reads the features, which the forward may have left in
    # the last-level cache, before the feature gradient's writes evict them (down forward+backward
    # at the benchmark shape, interleaved with bilinear, medians of 25 and 31 runs: 37.6 -> 35.0
    # and 34.4 -> 29.5 ms).
    if channels_last:
        run(cpu_kernels.nhwc_backward_masks, grad, x, grad_masks.numpy(), *config, x.dtype.type(0),
            threads=threads)
        run(cpu_kernels.nhwc_backward_features, grad, w, grad_features_array, *config, threads=threads)
    elif upsample:
        run(cpu_kernels.planar_upsample_backward_masks, grad, x, grad_masks.numpy(), kernel_size, group_size,
            scale_factor, static_scale, threads=threads)
        run(cpu_kernels.planar_upsample_backward_features, grad, w, grad_features_array, kernel_size,
            group_size, scale_factor, static_scale, threads=threads)
    else:
        task_rows = cpu_kernels.downsample_task_rows(w.shape[0], w.shape[2], threads)
        run(cpu_kernels.planar_downsample_backward_masks, grad, x, grad_masks.numpy(), kernel_size,
            group_size, static_scale, task_rows, threads=threads)
        run(cpu_kernels.planar_downsample_backward_features, grad, w, grad_features_array, kernel_size,
            group_size, static_scale, cpu_kernels.static_phase_taps(kernel_size, scale_factor),
            threads=threads)
    grad_masks = grad_masks.contiguous(memory_format=output_memory_format(masks))
    return grad_features.to(features.dtype), grad_masks.to(masks.dtype)
