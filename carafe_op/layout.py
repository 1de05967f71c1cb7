"""The memory-format contract every backend follows (so ``torch.compile`` sees true strides)."""

from __future__ import annotations

import torch


def output_memory_format(features: torch.Tensor) -> torch.memory_format:
    """Outputs are channels-last exactly when the features are (and not also plain contiguous)."""
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
