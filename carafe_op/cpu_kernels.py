"""Numba CPU kernels for CARAFE reassembly, forward and backward.

Layout: features and their gradients are channels-last numpy arrays (N, H, W, C), so one
output pixel's k*k weights are loaded once and reused across all channels of their group,
and the inner loop is a contiguous multiply-add over channels that LLVM vectorises. The
kernels ``w`` and their gradient stay in their natural (N, G*k*k, H_out, W_out) layout: a
row of outputs touches k*k contiguous rows of them, which caches well and saves transposed
copies. Outputs and feature gradients are accumulated in a channels-last row buffer and
written in the caller's layout (planar through a tiled transpose), so no layout copy of
them is needed either. Every output element is written by exactly
one thread in a fixed order (the backward passes gather instead of scattering), so results
are deterministic and need no atomics. No k*k-sized intermediate is allocated. Loops index
the arrays directly and run channel loops from 0 (``c0 + cc``): sub-array views or a
``range(c0, c1)`` in the hot loops stop LLVM from vectorising them (10-20x slower).

``upsample`` picks the source mapping of SPEC §1: output ``y`` reads around ``y // s``
(CARAFE) or around ``s * y`` (CARAFE++ downsampling).
"""

from __future__ import annotations

import numba
import numpy as np

# Reassociation lets LLVM vectorise the channel reductions; the order is still fixed by the
# compiled code, so runs stay bit-identical.
_FAST = {"reassoc", "contract", "nsz"}


@numba.njit(parallel=True, cache=True, fastmath=_FAST)
def reassemble_forward(x, w, out, k, groups, scale, upsample, out_channels_last):
    """out[n, y, xo, c] = sum_taps w[n, y, xo, tap] * x[n, src(y) + i, src(xo) + j, c].

    ``out`` is (N, C, H_out, W_out) C-contiguous, or (N, H_out, W_out, C) when
    ``out_channels_last``; a row buffer turns the channels-last accumulation into
    contiguous writes either way.
    """
    n_batch, in_h, in_w, channels = x.shape
    out_h, out_w = w.shape[2], w.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    for row in numba.prange(n_batch * out_h):
        n = row // out_h
        y = row % out_h
        sy = y // scale if upsample else y * scale
        buf = np.zeros((out_w, channels), dtype=x.dtype)
        for xo in range(out_w):
            sx = xo // scale if upsample else xo * scale
            for g in range(groups):
                c0 = g * group_channels
                for i in range(-r, r + 1):
                    yy = sy + i
                    if yy < 0 or yy >= in_h:
                        continue
                    for j in range(-r, r + 1):
                        xx = sx + j
                        if xx < 0 or xx >= in_w:
                            continue
                        weight = w[n, g * kk + (i + r) * k + (j + r), y, xo]
                        for cc in range(group_channels):
                            buf[xo, c0 + cc] += weight * x[n, yy, xx, c0 + cc]
        _store_row(out, buf, n, y, out_channels_last)


@numba.njit(inline="always")
def _store_row(out, buf, n, y, channels_last):
    """Write one (width, C) row buffer into ``out``, (N, H, W, C) or (N, C, H, W).

    The planar case transposes in 16 x 16 tiles, so both sides stay within a few cache lines.
    """
    width, channels = buf.shape
    if channels_last:
        out[n, y, :, :] = buf
        return
    for c0 in range(0, channels, 16):
        for x0 in range(0, width, 16):
            for c in range(c0, min(c0 + 16, channels)):
                for xo in range(x0, min(x0 + 16, width)):
                    out[n, c, y, xo] = buf[xo, c]


@numba.njit(inline="always")
def _output_range(base, scale, upsample, out_size):
    """Outputs whose source position is ``base``: [lo, hi), empty when none."""
    if upsample:
        return base * scale, base * scale + scale
    if base % scale != 0 or base // scale >= out_size:
        return 0, 0
    return base // scale, base // scale + 1


@numba.njit(parallel=True, cache=True, fastmath=_FAST)
def reassemble_backward_features(grad_out, w, grad_x, k, groups, scale, upsample, grad_channels_last):
    """grad_x[n, u, v, c] = sum over outputs and taps that read (u, v) of grad_out * w (gather).

    ``grad_out`` is channels-last; ``grad_x`` is (N, C, H, W), or (N, H, W, C) when
    ``grad_channels_last``.
    """
    n_batch, out_h, out_w, channels = grad_out.shape
    in_h, in_w = (grad_x.shape[1], grad_x.shape[2]) if grad_channels_last else (grad_x.shape[2], grad_x.shape[3])
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    for row in numba.prange(n_batch * in_h):
        n = row // in_h
        u = row % in_h
        buf = np.zeros((in_w, channels), dtype=grad_out.dtype)
        for v in range(in_w):
            for i in range(-r, r + 1):
                base_y = u - i
                if base_y < 0 or base_y >= in_h:
                    continue
                y0, y1 = _output_range(base_y, scale, upsample, out_h)
                for j in range(-r, r + 1):
                    base_x = v - j
                    if base_x < 0 or base_x >= in_w:
                        continue
                    x0, x1 = _output_range(base_x, scale, upsample, out_w)
                    tap = (i + r) * k + (j + r)
                    for y in range(y0, y1):
                        for xo in range(x0, x1):
                            for g in range(groups):
                                weight = w[n, g * kk + tap, y, xo]
                                c0 = g * group_channels
                                for cc in range(group_channels):
                                    buf[v, c0 + cc] += weight * grad_out[n, y, xo, c0 + cc]
        _store_row(grad_x, buf, n, u, grad_channels_last)


@numba.njit(parallel=True, cache=True, fastmath=_FAST)
def reassemble_backward_masks(grad_out, x, grad_w, k, groups, scale, upsample, zero):
    """grad_w[n, tap, y, xo] = sum over the tap's group channels of grad_out * x (0 off-map).

    ``grad_w`` is (N, G*k*k, H_out, W_out); ``zero`` is a scalar of the array dtype, so the
    sums accumulate in that dtype.
    """
    n_batch, in_h, in_w, channels = x.shape
    out_h, out_w = grad_w.shape[2], grad_w.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    for row in numba.prange(n_batch * out_h):
        n = row // out_h
        y = row % out_h
        sy = y // scale if upsample else y * scale
        for xo in range(out_w):
            sx = xo // scale if upsample else xo * scale
            for g in range(groups):
                c0 = g * group_channels
                for i in range(-r, r + 1):
                    yy = sy + i
                    for j in range(-r, r + 1):
                        xx = sx + j
                        total = zero
                        if 0 <= yy < in_h and 0 <= xx < in_w:
                            for cc in range(group_channels):
                                total += grad_out[n, y, xo, c0 + cc] * x[n, yy, xx, c0 + cc]
                        grad_w[n, g * kk + (i + r) * k + (j + r), y, xo] = total
