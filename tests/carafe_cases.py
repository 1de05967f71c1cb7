"""Random inputs and an independent loop implementation of SPEC §1 for the operator tests."""

from __future__ import annotations

import numpy as np
import torch


def random_case(
    n: int, c: int, h: int, w: int, k: int, groups: int, scale: int, upsample: bool,
    dtype: torch.dtype = torch.float64, normalise: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and (optionally softmax-normalised) masks for one reassembly call."""
    features = torch.randn(n, c, h, w, dtype=dtype)
    out_h, out_w = (h * scale, w * scale) if upsample else (-(-h // scale), -(-w // scale))
    masks = torch.randn(n, groups, k * k, out_h, out_w, dtype=dtype)
    if normalise:
        masks = masks.softmax(dim=2)
    return features, masks.reshape(n, groups * k * k, out_h, out_w)


def loop_reassemble(features: np.ndarray, masks: np.ndarray, k: int, groups: int, scale: int, upsample: bool):
    """Y[n,c,y,x] = sum_{i,j} W[n, t(i,j), y, x] * X[n, c, src(y)+i, src(x)+j], written as plain loops."""
    n, c, h, w = features.shape
    out_h, out_w = masks.shape[-2:]
    r = (k - 1) // 2
    out = np.zeros((n, c, out_h, out_w), dtype=np.float64)
    for b in range(n):
        for ch in range(c):
            g = ch // (c // groups)
            for y in range(out_h):
                for x in range(out_w):
                    sy, sx = (y // scale, x // scale) if upsample else (y * scale, x * scale)
                    total = 0.0
                    for i in range(-r, r + 1):
                        for j in range(-r, r + 1):
                            if 0 <= sy + i < h and 0 <= sx + j < w:
                                t = g * k * k + (i + r) * k + (j + r)
                                total += masks[b, t, y, x] * features[b, ch, sy + i, sx + j]
                    out[b, ch, y, x] = total
    return out
