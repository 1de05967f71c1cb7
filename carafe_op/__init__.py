"""CARAFE (content-aware upsampling) and CARAFE++ (content-aware downsampling).

Functional ops: ``carafe``, ``carafe_down``, ``carafe_masked``; layers: ``CARAFEUpsample``,
``CARAFEDownsample``. CPU tensors run compiled numba kernels, CUDA tensors the CUDA backend;
both fall back to the pure-PyTorch reference (with a warning) when unavailable.
"""

from .buffer_pool import empty_cache
from .dispatch import backend_name
from .functional import carafe, carafe_down, carafe_masked
from .modules import CARAFEDownsample, CARAFEUpsample, KernelPredictor
from .reference import reassemble_reference

__all__ = [
    "CARAFEDownsample",
    "CARAFEUpsample",
    "KernelPredictor",
    "backend_name",
    "carafe",
    "carafe_down",
    "carafe_masked",
    "empty_cache",
    "reassemble_reference",
]
