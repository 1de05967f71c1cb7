"""Run a CPU kernel's tasks on torch's own intra-op threads.

The kernels of ``cpu_kernels`` are serial, release the GIL and take task indices from a shared
counter until none is left; ``run`` starts one copy per thread. Where torch runs its parallel
loops on GNU OpenMP (the Linux wheels), the copies run on torch's own OpenMP team, entered
through ``GOMP_parallel`` as torch's own loops enter it. A second thread pool beside torch's
(numba's workqueue threads, used before) competed for the cores with torch's OpenMP threads,
which keep spinning for a while after each torch operation: the downsampling forward kernel
interleaved with a torch reduction, 2 threads, medians: 7.05 ms on numba's threads (30 runs),
3.71 ms on torch's team (40 runs); 3.40 ms on numba's threads with no torch operation in
between. Elsewhere (no libgomp found, or another threading backend) a thread pool of this
module runs the copies, and so it does in any forked child process: GNU OpenMP hangs in a
child forked after its threads ran, in the first parallel region with more than one thread
(torch's own loops included; DataLoader workers use one).
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _torch_gomp_parallel() -> Callable | None:
    """``GOMP_parallel`` of the libgomp that torch's parallel loops use, if that can be found."""
    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    try:
        with open("/proc/self/maps") as maps:
            loaded = {line.split()[-1] for line in maps if "libgomp" in line.rsplit("/", 1)[-1]}
    except OSError:
        return None
    torch_dir = os.path.dirname(torch.__file__)
    in_torch = [path for path in loaded if path.startswith(torch_dir)]
    candidates = in_torch or (sorted(loaded) if len(loaded) == 1 else [])
    if not candidates:
        return None
    try:
        parallel = ctypes.CDLL(candidates[0]).GOMP_parallel
    except (OSError, AttributeError):
        return None
    parallel.argtypes = [_CALLBACK, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    return parallel


_gomp_parallel = _torch_gomp_parallel()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """The parent's OpenMP team and pool threads do not exist in a forked child: use a new pool."""
    global _gomp_parallel, _pool, _pool_size, _pool_lock
    _gomp_parallel, _pool, _pool_size, _pool_lock = None, None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _helpers(count: int) -> ThreadPoolExecutor:
    """The fallback pool, with at least ``count`` threads."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < count:
            _pool, _pool_size = ThreadPoolExecutor(max_workers=count, thread_name_prefix="carafe_op"), count
        return _pool


def uses_torch_openmp() -> bool:
    """Whether ``run`` runs on torch's OpenMP threads (else on this module's own pool)."""
    return _gomp_parallel is not None


def run(kernel: Callable, *args, threads: int) -> None:
    """``kernel(*args, next_task)`` on ``threads`` threads at once, all sharing one task counter
    ``next_task``; the first error any of them raised is raised here."""
    next_task = np.zeros(1, dtype=np.int64)
    if threads <= 1:
        kernel(*args, next_task)
        return
    errors: list[BaseException] = []

    def work(_data=None) -> None:
        try:
            kernel(*args, next_task)
        except BaseException as error:  # noqa: BLE001 -- re-raised below, on the caller's thread
            errors.append(error)

    if _gomp_parallel is not None:
        _gomp_parallel(_CALLBACK(work), None, threads, 0)
    else:
        helpers = [_helpers(threads - 1).submit(work) for _ in range(threads - 1)]
        work()
        for helper in helpers:
            helper.result()
    if errors:
        raise errors[0]
