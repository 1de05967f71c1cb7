"""CPU thread settings: torch's intra-op threads, on which carafe_op's CPU kernels also run."""

from __future__ import annotations

import torch


def set_cpu_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads in torch (None: leave torch's default)."""
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a positive integer or null, got {threads!r}")
        torch.set_num_threads(threads)
