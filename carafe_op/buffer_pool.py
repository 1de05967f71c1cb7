"""Reuse of the CPU backend's large output buffers from one call to the next.

PyTorch's CPU allocator gives large blocks back to the system when they are freed, so every
call of the op gets fresh memory for its output and gradients, and the system clears each of
its pages on first write: in the downsampling forward+backward at the benchmark shape that
page clearing was 13 % of the time under ``perf``, and the feature gradient took 19 ms inside
the op against 10 ms into a reused buffer. A training loop calls the op with the same shapes
every step, so this pool keeps the memory of buffers whose tensors are gone and hands it out
again for a request of the same size, as PyTorch's CUDA caching allocator does on the GPU.

A buffer returns to the pool only when the last tensor or array that views it is freed (a
``weakref.finalize`` on the numpy array the tensor is made from; PyTorch holds that array until
the tensor's storage dies). Idle memory is capped by ``CARAFE_OP_BUFFER_CACHE_MB`` (default
1024; ``0`` turns reuse off; read at every call), freeing the buffers idle the longest first,
and ``empty_cache()`` frees it all. Buffers under ``MIN_POOLED_BYTES`` come from
``torch.empty``: the allocator's heap serves those without faults. Tensors from the pool have
storage that cannot be resized (``torch.from_numpy``).
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from . import huge_pages

MIN_POOLED_BYTES = 2**20
_DEFAULT_CACHE_MB = "1024"


def cache_limit_bytes() -> int:
    """The most idle memory the pool keeps: ``CARAFE_OP_BUFFER_CACHE_MB`` MiB (default 1024)."""
    setting = os.environ.get("CARAFE_OP_BUFFER_CACHE_MB", _DEFAULT_CACHE_MB)
    if not setting.isdigit():
        raise ValueError("environment variable CARAFE_OP_BUFFER_CACHE_MB must be a whole number of MiB "
                         f"(0 turns buffer reuse off), got {setting!r}")
    return int(setting) * 2**20


class _Pool:
    """Idle raw blocks (uint8 arrays), keyed by (bytes, huge-page advice); when over the cap,
    the blocks idle the longest are freed first."""

    def __init__(self) -> None:
        # Re-entrant: a garbage collection inside a locked section may free a view whose
        # finalizer gives its block back on the same thread.
        self._lock = threading.RLock()
        self._idle: dict[tuple[int, bool], list[np.ndarray]] = defaultdict(list)
        self._oldest_first: OrderedDict[int, tuple[tuple[int, bool], np.ndarray]] = OrderedDict()
        self.idle_bytes = 0

    def take(self, key: tuple[int, bool]) -> np.ndarray | None:
        with self._lock:
            blocks = self._idle.get(key)
            if not blocks:
                return None
            block = blocks.pop()
            del self._oldest_first[id(block)]
            self.idle_bytes -= key[0]
            return block

    def give_back(self, key: tuple[int, bool], block: np.ndarray) -> None:
        with self._lock:
            self._idle[key].append(block)
            self._oldest_first[id(block)] = (key, block)
            self.idle_bytes += key[0]
            limit = cache_limit_bytes()
            while self.idle_bytes > limit:
                _, (old_key, old_block) = self._oldest_first.popitem(last=False)
                # By identity: ``list.remove`` would compare same-sized arrays with ``==``.
                blocks = self._idle[old_key]
                blocks.pop(next(i for i, b in enumerate(blocks) if b is old_block))
                self.idle_bytes -= old_key[0]

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()
            self._oldest_first.clear()
            self.idle_bytes = 0

    def reset_lock(self) -> None:
        """After a fork the child gets a fresh lock (another thread of the parent may have held it)."""
        self._lock = threading.RLock()


_pool = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.reset_lock)


def empty_cache() -> None:
    """Free the idle buffers the pool keeps (buffers still in use are not affected)."""
    _pool.clear()


def cached_bytes() -> int:
    """Bytes of idle buffers the pool holds for reuse."""
    return _pool.idle_bytes


def empty(shape: tuple[int, ...], dtype: torch.dtype,
          memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """An uninitialised (N, C, H, W) CPU tensor for a kernel to fill, in ``memory_format``, made
    from a pooled buffer where the size allows; large fresh buffers ask for huge pages."""
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_POOLED_BYTES or cache_limit_bytes() == 0:
        tensor = torch.empty(shape, dtype=dtype, memory_format=memory_format)
        huge_pages.advise_huge_pages(tensor)
        return tensor
    key = (nbytes, huge_pages.enabled())
    block = _pool.take(key)
    if block is None:
        block = np.empty(nbytes, dtype=np.uint8)
        huge_pages.advise_huge_pages(torch.from_numpy(block))
    view = block.view(torch.empty(0, dtype=dtype).numpy().dtype)
    weakref.finalize(view, _pool.give_back, key, block).atexit = False
    tensor = torch.from_numpy(view)
    if memory_format == torch.channels_last:
        n, c, h, w = shape
        return tensor.view(n, h, w, c).permute(0, 3, 1, 2)
    return tensor.view(shape)
