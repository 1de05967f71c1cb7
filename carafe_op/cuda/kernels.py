"""The CUDA kernel source and the exact set of template instantiations the backend launches.

Both the runtime backend (CuPy ``RawModule``) and the GPU-less NVRTC check in CI build from
``source()``, ``name_expressions()`` and ``compile_options()``, so CI compiles exactly what
runs on a GPU. Importing this module needs neither CuPy nor a GPU.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

SOURCE_PATH = Path(__file__).with_name("reassemble.cu")
KERNELS = ("reassemble_forward", "reassemble_backward_features", "reassemble_backward_masks")
CUDA_TYPES = {
    torch.float16: "__half",
    torch.bfloat16: "__nv_bfloat16",
    torch.float32: "float",
    torch.float64: "double",
}
# Planar layouts block 4 channels per thread in registers; channels-last layouts load one
# 16-byte vector of channels per thread.
PLANAR_CHANNELS_PER_THREAD = 4
VECTOR_BYTES = 16


def vector_widths(dtype: torch.dtype, channels_last: bool) -> tuple[int, int]:
    """The channel counts per thread compiled for ``dtype``: 1 (always valid) and the wide one."""
    if dtype not in CUDA_TYPES:
        raise TypeError(f"no CUDA kernel for dtype {dtype}; expected one of {list(CUDA_TYPES)}")
    wide = VECTOR_BYTES // dtype.itemsize if channels_last else PLANAR_CHANNELS_PER_THREAD
    return 1, wide


def kernel_name(kernel: str, dtype: torch.dtype, vec: int, channels_last: bool) -> str:
    """The C++ name expression of one instantiation, e.g. ``reassemble_forward<float, 4, true>``."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if vec not in vector_widths(dtype, channels_last):
        raise ValueError(f"vec={vec} is not compiled for {dtype} (channels_last={channels_last})")
    return f"{kernel}<{CUDA_TYPES[dtype]}, {vec}, {'true' if channels_last else 'false'}>"


def name_expressions(
    dtypes: tuple[torch.dtype, ...] = tuple(CUDA_TYPES), layouts: tuple[bool, ...] = (False, True)
) -> tuple[str, ...]:
    """The instantiations the backend may launch for ``dtypes`` and ``layouts`` (channels_last
    flags): kernel x dtype x layout x channels per thread. The defaults give all of them."""
    return tuple(
        kernel_name(kernel, dtype, vec, channels_last)
        for dtype in dtypes
        for channels_last in layouts
        for kernel in KERNELS
        for vec in vector_widths(dtype, channels_last)
    )


@cache
def source() -> str:
    return SOURCE_PATH.read_text()


@cache
def include_dirs() -> tuple[str, ...]:
    """Folders holding ``cuda_fp16.h`` / ``cuda_bf16.h`` from the pip ``nvidia-*`` packages."""
    try:
        import nvidia
    except ImportError:
        return ()
    found = []
    for root in map(Path, nvidia.__path__):
        for candidate in (root / "cu13" / "include", root / "cuda_runtime" / "include"):
            if (candidate / "cuda_fp16.h").is_file() and str(candidate) not in found:
                found.append(str(candidate))
    return tuple(found)


def compile_options() -> tuple[str, ...]:
    """NVRTC options shared by the runtime build and the CI check (the target arch is added by each)."""
    return ("--std=c++17", *(f"-I{folder}" for folder in include_dirs()))
