"""CUDA backend: CuPy ``RawModule`` kernels (``cuda/reassemble.cu``) on torch's memory and stream.

The reassembly is memory-bound (SPEC §1, "Cost"): its floor is one read of the features and
kernels and one write of the output. The kernels are built around that:

- Work items: forward, one output pixel x VEC channels of one group; backward to features,
  one input pixel x VEC channels (gather: it sums over the s² outputs and k² taps that read
  it); backward to masks, one output pixel x one tap (a sum over the group's channels).
  A tap's weight is loaded once per thread and applied to all its VEC channels, and the
  threads of one pixel run side by side, so the k² weights of a pixel come from DRAM about
  once and are reused from cache across all channels of the group.
- Channels-last features (the layout of ``layout.output_memory_format``): a thread's VEC
  channels are one 16-byte vector (8 fp16/bf16, 4 fp32, 2 fp64), loaded and stored with a
  single instruction, and a warp covers consecutive channels, so every access is coalesced.
- Planar features (NCHW or any strides): x runs fastest across a warp, so feature, kernel
  and gradient rows are read and output rows written coalesced; each thread blocks 4
  channels in registers to reuse each weight load 4 times.
- Every input value is read by s²·k² (output, tap) pairs; the work order (channel chunk and
  x, then row, then image) makes consecutive blocks share the k input rows of an output
  row, so those re-reads hit L1/L2 instead of DRAM.
- Backward without atomics: each gradient element is written by one thread that sums in a
  fixed order, so two runs are bit-identical. Accumulation is fp32 (fp64 for double).
- 64-bit indices and per-tensor strides throughout: non-contiguous inputs are read in place;
  no shared memory and no k²-sized buffer, so G·k² has no limit. The only extra memory is the
  outputs themselves, plus a channels-last copy of ``grad_output`` when the channels-last path
  receives it in another layout (one output-sized buffer). Gradients are computed into
  channels-last buffers; planar inputs get a planar copy of theirs (an input-sized and a
  kernel-sized buffer; writing planar gradients directly is an open optimisation).

One module per (device, dtype, layout) is compiled by NVRTC on first use (CuPy caches it on
disk); launches go to torch's current stream on the tensors' device, with raw pointers (no
copies, any dtype, bf16 included). Importing this module raises ``ImportError`` when CuPy or
a CUDA device is missing, which ``dispatch`` turns into the reference fallback.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch

from .cuda import kernels
from .cuda.launch import Launch, backward_launches, forward_launch
from .layout import output_memory_format

try:
    import cupy
except Exception as error:  # ImportError, or CUDA libraries that fail to load
    raise ImportError(f"CuPy is not usable: {error}") from error

if not torch.cuda.is_available():
    raise ImportError("torch sees no CUDA device")
if not cupy.cuda.is_available():
    raise ImportError("CuPy sees no CUDA device")

THREADS_PER_BLOCK = 256
_MAX_BLOCKS = 2**31 - 1  # grid-stride loops cover any remainder


@cache
def _module(device_index: int, dtype: torch.dtype, channels_last: bool) -> cupy.RawModule:
    """The instantiations for one (dtype, layout); NVRTC compiles them on the first ``get_function``."""
    return cupy.RawModule(
        code=kernels.source(),
        options=kernels.compile_options(),
        name_expressions=kernels.name_expressions((dtype,), (channels_last,)),
    )


@cache
def _function(device_index: int, dtype: torch.dtype, channels_last: bool, name: str) -> cupy.RawKernel:
    with cupy.cuda.Device(device_index):
        return _module(device_index, dtype, channels_last).get_function(name)


def _cupy_stream(device: torch.device) -> cupy.cuda.Stream:
    """Torch's current stream on ``device``, wrapped for CuPy (no new stream is created)."""
    stream = torch.cuda.current_stream(device)
    if hasattr(cupy.cuda.Stream, "from_external"):  # CuPy >= 14 deprecates ExternalStream
        return cupy.cuda.Stream.from_external(stream)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device.index)


def _run(launch: Launch) -> None:
    if launch.total == 0:
        return
    device = launch.tensors[0].device
    # Every kernel parameter is 8 bytes: a pointer (uint64) or a long long (int64).
    args: list[np.generic] = []
    for tensor in launch.tensors:
        args.append(np.uint64(tensor.data_ptr()))
        args.extend(np.int64(stride) for stride in tensor.stride())
    args.extend(np.int64(size) for size in launch.sizes)
    blocks = min(-(-launch.total // THREADS_PER_BLOCK), _MAX_BLOCKS)
    function = _function(device.index, launch.tensors[0].dtype, launch.channels_last, launch.kernel)
    with cupy.cuda.Device(device.index), _cupy_stream(device):
        function((blocks,), (THREADS_PER_BLOCK,), tuple(args))


def forward(
    features: torch.Tensor, masks: torch.Tensor, kernel_size: int, group_size: int,
    scale_factor: int, upsample: bool,
) -> torch.Tensor:
    """Reassembled features, in ``layout.output_memory_format(features)``."""
    out, launch = forward_launch(features, masks, kernel_size, group_size, scale_factor, upsample)
    _run(launch)
    return out


def backward(
    grad_output: torch.Tensor, features: torch.Tensor, masks: torch.Tensor, kernel_size: int,
    group_size: int, scale_factor: int, upsample: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grad_features, grad_masks)``, each in its input's memory format (the dispatch contract).

    The kernels fill channels-last buffers (their vector-store layout); planar inputs get a
    planar copy of their gradient.
    """
    grad_features, grad_masks, launches = backward_launches(
        grad_output, features, masks, kernel_size, group_size, scale_factor, upsample
    )
    for launch in launches:
        _run(launch)
    return (
        grad_features.contiguous(memory_format=output_memory_format(features)),
        grad_masks.contiguous(memory_format=output_memory_format(masks)),
    )
