"""Transparent huge pages for the CPU kernels' large output buffers (Linux).

A freshly allocated tensor of tens of MiB is mapped page by page on first write: 8192 page
faults for a 32 MiB output, 11-15 ms on the 2-core benchmark machine, a third or more of an
upsampling forward. Advising the kernel to back the buffer with 2 MiB pages (``madvise
MADV_HUGEPAGE``; the system setting must be ``madvise`` or ``always``) cuts that to about 6 ms.
Only buffers of at least ``MIN_HUGE_PAGES`` huge pages are advised. It is advice only: where
the kernel has no huge page at hand it maps normal pages, and freeing the tensor is unchanged.
Set ``CARAFE_OP_HUGE_PAGES=0`` to turn it off (PyTorch's own ``THP_MEM_ALLOC_ENABLE=1`` does
the same for every large torch allocation).
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

HUGE_PAGE_BYTES = 2 * 2**20
# Below 16 MiB there was nothing to gain: the 8 MiB output of the benchmark's downsampling was
# no faster with huge pages (within noise, up to 4.6 ms slower in one run).
MIN_HUGE_PAGES = 8
_MADV_HUGEPAGE = 14


def _libc_madvise():
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


_madvise = _libc_madvise()


def enabled() -> bool:
    """On unless ``CARAFE_OP_HUGE_PAGES=0`` (read at every call, so it can be switched at run time)."""
    setting = os.environ.get("CARAFE_OP_HUGE_PAGES", "1")
    if setting not in ("0", "1"):
        raise ValueError(f"environment variable CARAFE_OP_HUGE_PAGES must be '0' or '1', got {setting!r}")
    return _madvise is not None and setting == "1"


def advise_huge_pages(tensor: torch.Tensor) -> bool:
    """Ask for huge pages behind the whole 2 MiB-aligned pages inside a CPU tensor's memory,
    before it is first written. Returns whether the advice was given and accepted; tensors
    spanning fewer than ``MIN_HUGE_PAGES`` whole huge pages are left alone."""
    if not enabled() or tensor.device.type != "cpu":
        return False
    storage = tensor.untyped_storage()
    start = storage.data_ptr()
    end = start + storage.nbytes()
    first = -(-start // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
    last = end // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES
    if last - first < MIN_HUGE_PAGES * HUGE_PAGE_BYTES:
        return False
    return _madvise(first, last - first, _MADV_HUGEPAGE) == 0
