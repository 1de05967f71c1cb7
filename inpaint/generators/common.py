"""Helpers shared by the generators."""

from __future__ import annotations


def scale_channels(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, at least 1."""
    return max(1, round(channels * width))
