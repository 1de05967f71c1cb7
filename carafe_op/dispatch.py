"""The reassembly as ``torch.library`` custom ops, routed to a backend by device.

Registering custom ops (with fake implementations and an autograd formula) is what lets
``torch.compile`` trace models that use CARAFE without graph breaks, and lets
``torch.utils.flop_counter`` count it. Backends: the numba CPU kernels, the CUDA kernels
(``cuda_backend``, when importable) and the pure-PyTorch reference as the fallback, which
announces itself with one warning per device type.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from types import ModuleType

import torch
from torch.utils.flop_counter import register_flop_formula

from . import reference
from .layout import output_memory_format

_BACKEND_MODULES = {"cpu": "carafe_op.cpu_backend", "cuda": "carafe_op.cuda_backend"}
_backends: dict[str, ModuleType] = {}


def backend_for(device: torch.device) -> ModuleType:
    """The backend module for ``device``: compiled when it loads, else the reference (warned once)."""
    if device.type not in _backends:
        name = _BACKEND_MODULES.get(device.type)
        try:
            if name is None:
                raise ImportError(f"no compiled CARAFE backend exists for device type {device.type!r}")
            _backends[device.type] = importlib.import_module(name)
        except ImportError as error:
            warnings.warn(
                f"carafe_op: compiled {device.type} backend unavailable ({error}); using the slower "
                "pure-PyTorch reference implementation",
                RuntimeWarning,
                stacklevel=3,
            )
            _backends[device.type] = reference
    return _backends[device.type]


def backend_name(device: torch.device | str) -> str:
    """Short name of the backend that serves ``device`` (``cpu``, ``cuda`` or ``reference``)."""
    module = backend_for(torch.device(device))
    return "reference" if module is reference else module.__name__.rsplit(".", 1)[-1].removesuffix("_backend")


@torch.library.custom_op("carafe_op::reassemble", mutates_args=())
def reassemble(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
    scale_factor: int, upsample: bool,
) -> torch.Tensor:
    """Unchecked reassembly; call the validated ``carafe`` / ``carafe_down`` instead."""
    return backend_for(features.device).forward(features, masks, kernel_size, group_size, scale_factor, upsample)


@reassemble.register_fake
def _reassemble_fake(features, masks, kernel_size, group_size, scale_factor, upsample):
    n, c = features.shape[:2]
    return torch.empty(
        (n, c, *masks.shape[-2:]), dtype=features.dtype, device=features.device,
        memory_format=output_memory_format(features),
    )


@torch.library.custom_op("carafe_op::reassemble_backward", mutates_args=())
def reassemble_backward(
    grad_output: torch.Tensor, features: torch.Tensor, masks: torch.Tensor, kernel_size: int,
    group_size: int, scale_factor: int, upsample: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients with respect to features and masks, each in its input's memory format."""
    return backend_for(features.device).backward(
        grad_output, features, masks, kernel_size, group_size, scale_factor, upsample
    )


@reassemble_backward.register_fake
def _reassemble_backward_fake(grad_output, features, masks, kernel_size, group_size, scale_factor, upsample):
    return (
        torch.empty_like(features, memory_format=output_memory_format(features)),
        torch.empty_like(masks, memory_format=output_memory_format(masks)),
    )


def _setup_context(ctx, inputs, output):
    features, masks, kernel_size, group_size, scale_factor, upsample = inputs
    ctx.save_for_backward(features, masks)
    ctx.config = (kernel_size, group_size, scale_factor, upsample)


def _backward(ctx, grad_output):
    features, masks = ctx.saved_tensors
    grad_features, grad_masks = reassemble_backward(grad_output, features, masks, *ctx.config)
    return grad_features, grad_masks, None, None, None, None


reassemble.register_autograd(_backward, setup_context=_setup_context)


def reassembly_flops(features_shape: Sequence[int], masks_shape: Sequence[int], group_size: int) -> int:
    """One multiply and one add per tap (k*k of them) per output element."""
    n, c = features_shape[:2]
    taps = masks_shape[1] // group_size
    out_h, out_w = masks_shape[-2:]
    return 2 * n * c * out_h * out_w * taps


@register_flop_formula(torch.ops.carafe_op.reassemble)
def _reassemble_flop(features_shape, masks_shape, kernel_size, group_size, *args, out_shape=None, **kwargs) -> int:
    return reassembly_flops(features_shape, masks_shape, group_size)


@register_flop_formula(torch.ops.carafe_op.reassemble_backward)
def _reassemble_backward_flop(
    grad_shape, features_shape, masks_shape, kernel_size, group_size, *args, out_shape=None, **kwargs
) -> int:
    return 2 * reassembly_flops(features_shape, masks_shape, group_size)
