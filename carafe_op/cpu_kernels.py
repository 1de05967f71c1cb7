"""Numba CPU kernels for CARAFE reassembly, forward and backward, in two layouts.

The predicted kernels ``w`` and their gradient always stay in their natural (N, G*k*k, H_out,
W_out) layout; features, outputs and their gradients come in one of two layouts, each with its
own kernels, so no layout copy of them is made:

- Planar (N, C, H, W), ``planar_*``: the vector axis is a row. Per channel, the k source rows
  that a block of output rows reads are first "spread" (``_spread_row``) so that every tap is a
  contiguous, zero-padded slice aligned with the output row; each tap is then one multiply-add
  over the row. The feature gradient accumulates in the same spread form and is folded back
  (``_collect_row``, the adjoint). The downsampling kernels lay all output rows of a task end
  to end (``_rows_end_to_end``), so each tap is one multiply-add over the whole task. The
  upsampling forward instead splits the output row by column phase, which reads each source
  row once (``planar_upsample_forward``).
- Channels-last (N, H, W, C), ``nhwc_*``: the vector axis is the channels. One output pixel's
  k*k weights are loaded once and reused across all channels of their group.

Every output element is written by exactly one task, in a fixed order (the backward passes
gather instead of scattering), so results are deterministic and the data need no atomics.
The kernels are serial and release the GIL: each copy takes the next task index from a shared
counter ``next_task`` (``_take_task``) until none is left, and ``thread_team.run`` starts one
copy per thread, on torch's own threads. Handing tasks out one at a time means that one core
slowed by other load does not hold up the whole call, as a fixed share per thread did (numba's
``prange``: op forward+backward at the benchmark shapes, 2 threads, inside the benchmark's
round-robin, medians: down 33.2 -> 29.3, 28.2 -> 26.5, 32.8 -> 31.2 and 30.9 -> 30.7 ms in
four runs, up 87.7 -> 73.2 ms in one; bit-identical results).

No k*k-sized intermediate is allocated. Loops index the arrays directly and run vector loops
from 0 (``c0 + cc``, ``start + xo``): sub-array views or a ``range(c0, c1)`` in the hot loops
stop LLVM from vectorising them (10-20x slower).

``upsample`` picks the source mapping of SPEC §1: output ``y`` reads around ``y // s``
(CARAFE) or around ``s * y`` (CARAFE++ downsampling).
"""

from __future__ import annotations

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

# Reassociation lets LLVM vectorise the reductions; the order is still fixed by the compiled
# code, so runs stay bit-identical.
_FAST = {"reassoc", "contract", "nsz"}


@intrinsic
def _take_task(typingctx, next_task):
    """Atomically ``next_task[0] += 1``; the value before: the caller's task index."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        first = cgutils.get_item_pointer(context, builder, array_type, array, [context.get_constant(types.intp, 0)])
        return builder.atomic_rmw("add", first, context.get_constant(types.int64, 1), "monotonic")

    return types.int64(next_task), codegen


@numba.njit(inline="always")
def _output_range(base, scale, upsample, out_size):
    """Outputs whose source position is ``base``: [lo, hi), empty when none."""
    if upsample:
        return base * scale, base * scale + scale
    if base % scale != 0 or base // scale >= out_size:
        return 0, 0
    return base // scale, base // scale + 1


# Output-row blocks per planar upsampling task: a task spreads each source row its blocks read
# once per channel, so neighbouring blocks share the work of their overlapping windows.
_CHUNK = 8


@numba.njit(inline="always")
def _chunk(task, n_chunks, n_blocks, step, r, blocks_per_task):
    """A planar task's batch index, its blocks [b0, b1) and the first source row it spreads."""
    n = task // n_chunks
    b0 = (task % n_chunks) * blocks_per_task
    return n, b0, min(b0 + blocks_per_task, n_blocks), b0 * step - r


@numba.njit(inline="always")
def _spread_geometry(k, scale, upsample, out_w):
    """(phases, pad, width) of a spread source row (see ``_spread_row``)."""
    r = (k - 1) // 2
    if upsample:
        return 1, r * scale, out_w + 2 * r * scale
    return scale, r, out_w + 2 * r


@numba.njit(inline="always")
def _tap_slot(j, scale, upsample, pad):
    """(phase, start): the tap at column offset ``j`` of output ``xo`` is spread[phase, start + xo].

    ``start`` is never negative; the ``max`` tells LLVM so, which drops numba's negative-index
    wrap-around from ``start + xo`` and lets the tap loops vectorise (3-4x faster).
    """
    if upsample:
        return 0, max(pad + scale * j, 0)
    return j % scale, max(pad + j // scale, 0)


@numba.njit(inline="always")
def _tap_slots(k, scale, upsample, pad):
    """``_tap_slot`` of every column offset of the window, as (phases, starts) arrays.

    The backward kernels take k and the scale at run time, so ``_tap_slot`` in their tap loops
    divided by the scale once per tap and output row (an ``idiv``: 12 % of the downsampling
    mask gradient under ``perf``). A task looks the slots up instead. LLVM cannot see that a
    looked-up start is non-negative, so the tap loops clamp it with ``max(start, 0)`` again.
    """
    r = (k - 1) // 2
    phases = np.empty(k, dtype=np.int64)
    starts = np.empty(k, dtype=np.int64)
    for j in range(k):
        phases[j], starts[j] = _tap_slot(j - r, scale, upsample, pad)
    return phases, starts


@numba.njit(inline="always")
def _spread_row(x, n, c, row, spread, i, scale, upsample, pad):
    """Lay source row x[n, c, row] into spread[i] so that each tap is a slice (``_tap_slot``).

    Up: pixel v is repeated ``scale`` times (output xo reads xo // scale). Down: the row is split
    into ``scale`` phases (slot xo of phase p holds pixel s * xo + p); with ``scale`` known at
    compile time the phase loop inside the pixel loop becomes vector shuffles (the downsampling
    forward: 22.7 -> 13.5 ms at the benchmark shape). Slots off the map are never written, so
    they keep the zeros ``spread`` was created with. ``max(pad, 0)`` drops numba's negative-index
    wrap-around from the stores, as in ``_tap_slot``; without it the copy stayed scalar (a
    third of the downsampling forward under ``perf``).
    """
    pad = max(pad, 0)
    if upsample:
        for v in range(x.shape[3]):
            for b in range(scale):
                spread[i, 0, pad + scale * v + b] = x[n, c, row, v]
    else:
        for xo in range(x.shape[3] // scale):
            for phase in range(scale):
                spread[i, phase, pad + xo] = x[n, c, row, scale * xo + phase]
        for v in range(x.shape[3] // scale * scale, x.shape[3]):
            spread[i, v % scale, pad + v // scale] = x[n, c, row, v]


@numba.njit(inline="always")
def _spread_rows(x, n, c, row0, spread, scale, upsample, pad):
    """Spread the source rows row0, row0 + 1, ... of a task into spread[0], spread[1], ...;
    rows off the map stay zero."""
    for q in range(spread.shape[0]):
        if 0 <= row0 + q < x.shape[2]:
            _spread_row(x, n, c, row0 + q, spread, q, scale, upsample, pad)


@numba.njit(inline="always")
def _collect_row(acc, i, grad_x, n, c, u, scale, upsample, pad):
    """Adjoint of ``_spread_row``: grad_x[n, c, u, v] = sum of the slots of acc[i] that hold pixel v.

    Mirrors ``_spread_row``: with ``scale`` a compile-time constant the phase loop inside the
    pixel loop becomes vector shuffles (phase by phase, LLVM emitted scatter instructions, and
    with a run-time scale scalar strided stores: a third of the downsampling feature gradient).
    """
    pad = max(pad, 0)
    if upsample:
        for v in range(grad_x.shape[3]):
            total = acc[i, 0, pad + scale * v]
            for b in range(1, scale):
                total += acc[i, 0, pad + scale * v + b]
            grad_x[n, c, u, v] = total
    else:
        for xo in range(grad_x.shape[3] // scale):
            for phase in range(scale):
                grad_x[n, c, u, scale * xo + phase] = acc[i, phase, pad + xo]
        for v in range(grad_x.shape[3] // scale * scale, grad_x.shape[3]):
            grad_x[n, c, u, v] = acc[i, v % scale, pad + v // scale]


# Output rows per task of the downsampling forward and mask gradient, at most: more rows spread
# fewer halo source rows per output row and run longer vector loops (16 against 8 rows, kernel
# medians at the benchmark shape, 2 threads: forward 8.7 -> 7.8 ms, mask gradient 10.5 -> 10.2).
_MAX_TASK_ROWS = 16
# ... and at least, when rows are cut to give every thread work (4 rows: 10 % slower than 8).
_MIN_TASK_ROWS = 4


def downsample_task_rows(n_batch: int, out_h: int, threads: int) -> int:
    """Output rows per task of ``planar_downsample_forward`` / ``_backward_masks``: up to
    ``_MAX_TASK_ROWS``, fewer (down to ``_MIN_TASK_ROWS``) where that leaves fewer than two tasks
    per thread, so small maps and many threads still split the work."""
    rows_for_two_tasks_per_thread = -(-n_batch * out_h // (2 * threads))
    return max(_MIN_TASK_ROWS, min(_MAX_TASK_ROWS, rows_for_two_tasks_per_thread))


def static_size(size: int) -> tuple[int, ...]:
    """``size`` as a tuple of that length: numba compiles one version per tuple length, so a
    kernel that takes ``len(...)`` of it sees the window size or scale as a compile-time constant
    and unrolls the loops over it (the planar forwards and the mask gradient's spread)."""
    return tuple(range(size))


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def planar_upsample_forward(x, w, out, k, static_k, static_scale, groups, next_task):
    """out[n, c, s*u + a, s*v + b] = sum_{i, j} w[n, tap(i, j), s*u + a, s*v + b] * x[n, c, u + i - r, v + j - r].

    Split by output column phase b: the outputs s*v + b of one phase read source columns
    v + j - r, contiguous in v, so one load of a source pixel serves all s phases (the spread
    form would store and load it s times). A task first regroups its output rows' weights phase
    by phase (``w_phase[row, tap, b, v] = w[n, tap, row, s*v + b]``), once per group for all its
    channels; each channel's source rows are copied zero-padded (``_spread_rows`` at scale 1).
    Channels go in pairs sharing each weight load, as in ``planar_downsample_forward``.

    ``static_k = static_size(k)`` and ``static_scale = static_size(s)`` make the tap and phase loops
    compile-time constant, so they unroll inside the vector loop over v. The window-row loop
    runs to the run-time ``k``: fully unrolled as well, LLVM generated slower code. Against the
    spread form (kernel medians at the benchmark shape, 2 threads): 35.5 -> 23.6 ms;
    the summation order per output is unchanged, so the results are bit-identical.
    """
    n_batch, channels, in_h, in_w = x.shape
    k_taps = len(static_k)
    scale = len(static_scale)
    group_channels = channels // groups
    r = (k_taps - 1) // 2
    kk = k_taps * k_taps
    n_chunks = (in_h + _CHUNK - 1) // _CHUNK
    n_tasks = n_batch * n_chunks
    while True:
        task = _take_task(next_task)
        if task >= n_tasks:
            break
        n, u0, u1, row0 = _chunk(task, n_chunks, in_h, 1, r, _CHUNK)
        rows_a = np.zeros((u1 - u0 + k_taps - 1, 1, in_w + 2 * r), dtype=x.dtype)
        rows_b = np.zeros_like(rows_a)
        w_phase = np.empty(((u1 - u0) * scale, kk, scale, in_w), dtype=x.dtype)
        acc = np.empty((2, scale, in_w), dtype=x.dtype)
        for g in range(groups):
            for row in range((u1 - u0) * scale):
                for t in range(kk):
                    for v in range(in_w):
                        for b in range(scale):
                            w_phase[row, t, b, v] = w[n, g * kk + t, u0 * scale + row, scale * v + b]
            last = (g + 1) * group_channels - 1
            for ca in range(g * group_channels, last + 1, 2):
                cb = min(ca + 1, last)
                _spread_rows(x, n, ca, row0, rows_a, 1, True, r)
                _spread_rows(x, n, cb, row0, rows_b, 1, True, r)
                for row in range((u1 - u0) * scale):
                    uu = row // scale
                    acc[:] = 0
                    for i in range(k):
                        if row0 + uu + i < 0 or row0 + uu + i >= in_h:
                            continue
                        for v in range(in_w):
                            for b in range(scale):
                                total_a = acc[0, b, v]
                                total_b = acc[1, b, v]
                                for j in range(k_taps):
                                    weight = w_phase[row, i * k_taps + j, b, v]
                                    total_a += weight * rows_a[uu + i, 0, v + j]
                                    total_b += weight * rows_b[uu + i, 0, v + j]
                                acc[0, b, v] = total_a
                                acc[1, b, v] = total_b
                    for v in range(in_w):
                        for b in range(scale):
                            out[n, ca, u0 * scale + row, scale * v + b] = acc[0, b, v]
                            out[n, cb, u0 * scale + row, scale * v + b] = acc[1, b, v]


@numba.njit(inline="always")
def _spread_rows_by_parity(x, n, c, row0, n_rows, spread, scale, pad, width):
    """Spread source rows row0 + q, q < n_rows, as in ``_spread_row``, into
    spread[q % scale, phase, (q // scale) * width + slot]: rows of one parity follow each other,
    so the rows that output rows y, y + 1, ... read for one window row are ``width`` apart."""
    for q in range(n_rows):
        if 0 <= row0 + q < x.shape[2]:
            _spread_row(x, n, c, row0 + q, spread, q % scale, scale, False, (q // scale) * width + pad)


@numba.njit(inline="always")
def _parity_buffer(n_rows, scale, phases, width, like):
    """A zeroed buffer for source rows 0 <= q < n_rows in the layout of ``_spread_rows_by_parity``
    (spread[q % scale, phase, (q // scale) * width + slot]), of ``like``'s dtype."""
    return np.zeros((scale, phases, ((n_rows - 1) // scale + 1) * width), dtype=like.dtype)


@numba.njit(inline="always")
def _collect_rows_by_parity(acc, grad_x, n, c, row0, u0, u1, scale, pad, width):
    """Adjoint of ``_spread_rows_by_parity`` for the source rows u0 <= u < u1 (``_collect_row``)."""
    for u in range(u0, u1):
        q = u - row0
        _collect_row(acc, q % scale, grad_x, n, c, u, scale, False, (q // scale) * width + pad)


@numba.njit(inline="always")
def _rows_end_to_end(src, n, channel, y0, rows, dst, d, width):
    """dst[d, y * width + xo] = src[n, channel, y0 + y, xo] for y < rows: the rows laid end to end
    with the stride of a padded row; the ``width - W`` slots between them are left as they are."""
    for y in range(rows):
        row_start = max(y * width, 0)
        for xo in range(src.shape[3]):
            dst[d, row_start + xo] = src[n, channel, y0 + y, xo]


@numba.njit(inline="always")
def _rows_from_end_to_end(src, d, dst, n, channel, y0, rows, width):
    """Inverse of ``_rows_end_to_end``: dst[n, channel, y0 + y, xo] = src[d, y * width + xo]."""
    for y in range(rows):
        row_start = max(y * width, 0)
        for xo in range(dst.shape[3]):
            dst[n, channel, y0 + y, xo] = src[d, row_start + xo]


@numba.njit(inline="always")
def _downsample_task_geometry(k, scale, out_w, rows):
    """For a task over ``rows`` output rows of the end-to-end layout: (phases, pad, width) of the
    spread, the source rows it reads, and ``span``, the flat positions up to its last output
    (its last row's padding is left out: there a tap's slice would run past the spread)."""
    phases, pad, width = _spread_geometry(k, scale, False, out_w)
    return phases, pad, width, (rows - 1) * scale + k, (rows - 1) * width + out_w


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def planar_downsample_forward(x, w, out, static_k, static_scale, groups, task_rows, next_task):
    """out[n, c, y, xo] = sum_taps w[n, tap, y, xo] * x[n, c, s*y + i - r, s*xo + j - r], planar.

    A task's output rows are laid end to end with a stride of ``width`` (the padded row), in the
    accumulator, in a copy of the task's weights (zero in the padding) and in the spread source
    rows (``_spread_rows_by_parity``), so one vector loop covers all rows of the task per window
    row. Row by row, the 64-wide loops spent about a third of the time in their set-up (perf);
    now the kernel is bound by reading the input (kernel medians at the benchmark shape,
    2 threads: 8.2 -> 6.2 ms, bit-identical). Rows above or below the map are zeros in the
    spread, which adds exact zeros instead of skipping them.

    ``static_k = static_size(k)``: with k constant, the k taps of a window row are unrolled into
    the pass, so ``acc`` is loaded and stored once per window row instead of once per tap;
    ``static_scale = static_size(s)`` does the same for ``_spread_row``'s phases. Channels go in
    pairs (a and b) that share each weight load; in a group with an odd channel count the last
    channel is paired with itself. A task covers ``task_rows`` output rows
    (``downsample_task_rows``).
    """
    k = len(static_k)
    scale = len(static_scale)
    n_batch, channels = x.shape[0], x.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    n_chunks = (out_h + task_rows - 1) // task_rows
    n_tasks = n_batch * n_chunks
    while True:
        task = _take_task(next_task)
        if task >= n_tasks:
            break
        n, y0, y1, row0 = _chunk(task, n_chunks, out_h, scale, r, task_rows)
        phases, pad, width, n_source_rows, span = _downsample_task_geometry(k, scale, out_w, y1 - y0)
        spread_a = _parity_buffer(n_source_rows, scale, phases, width, x)
        spread_b = np.zeros_like(spread_a)
        w_task = np.zeros((kk, span), dtype=w.dtype)
        acc = np.empty((2, span), dtype=x.dtype)
        for g in range(groups):
            for t in range(kk):
                _rows_end_to_end(w, n, g * kk + t, y0, y1 - y0, w_task, t, width)
            last = (g + 1) * group_channels - 1
            for ca in range(g * group_channels, last + 1, 2):
                cb = min(ca + 1, last)
                _spread_rows_by_parity(x, n, ca, row0, n_source_rows, spread_a, scale, pad, width)
                _spread_rows_by_parity(x, n, cb, row0, n_source_rows, spread_b, scale, pad, width)
                acc[:] = 0
                for i in range(k):
                    parity = i % scale
                    for f in range(span):
                        total_a = acc[0, f]
                        total_b = acc[1, f]
                        for j in range(k):
                            phase, start = _tap_slot(j - r, scale, False, pad)
                            source = max((i // scale) * width + start, 0)
                            weight = w_task[i * k + j, f]
                            total_a += weight * spread_a[parity, phase, source + f]
                            total_b += weight * spread_b[parity, phase, source + f]
                        acc[0, f] = total_a
                        acc[1, f] = total_b
                _rows_from_end_to_end(acc, 0, out, n, ca, y0, y1 - y0, width)
                _rows_from_end_to_end(acc, 1, out, n, cb, y0, y1 - y0, width)


# Output rows per task of the downsampling feature gradient. A task also computes the output rows
# just outside its own that read its source rows (one on each side at k = 5, s = 2), so its
# share of redundant work shrinks with more rows (32 rows were no faster than 16).
_GRAD_CHUNK = 16


def static_phase_taps(k: int, scale: int) -> tuple[int, ...]:
    """``static_size`` of the most taps that one window row has in one column phase, ceil(k / s):
    the feature gradient of downsampling unrolls its tap loop over them."""
    return static_size(-(-k // scale))


@numba.njit(inline="always")
def _phase_columns(tap_phase, phases):
    """Per column phase, how many window columns fall in it and the first of them."""
    count = np.zeros(phases, dtype=np.int64)
    first = np.zeros(phases, dtype=np.int64)
    for j in range(len(tap_phase) - 1, -1, -1):
        count[tap_phase[j]] += 1
        first[tap_phase[j]] = j
    return count, first


@numba.njit(inline="always")
def _gather_phase_taps(acc, parity, phase, offset, go, w_task, first_tap, scale, lead, static_taps):
    """acc[d, parity, phase, offset + p] += sum over m of go[d, p - m] * w_task[first_tap + m * s, p - m]
    for both channels d and every p that a tap reaches; ``go`` and ``w_task`` carry ``lead`` zeros
    on each side, so p - m may run past their ends.

    The taps m = 0, 1, ... of one window row and column phase (columns j, j + s, ...) land one
    accumulator slot apart. Gathered this way, each accumulator slot is loaded and stored once
    for all of them instead of once per tap; ``len(static_taps)`` is their count, a compile-time
    constant, so the tap loop is unrolled inside the vector loop.
    """
    offset = max(offset, 0)
    taps = len(static_taps)
    for p in range(go.shape[1] - 2 * lead + taps - 1):
        total_a = acc[0, parity, phase, offset + p]
        total_b = acc[1, parity, phase, offset + p]
        for m in range(taps):
            at = max(lead - m, 0)
            weight = w_task[max(first_tap + m * scale, 0), at + p]
            total_a += go[0, at + p] * weight
            total_b += go[1, at + p] * weight
        acc[0, parity, phase, offset + p] = total_a
        acc[1, parity, phase, offset + p] = total_b


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def planar_downsample_backward_features(grad_out, w, grad_x, k, groups, static_scale, static_taps, next_task):
    """grad_x[n, c, u, v] = sum over outputs and taps that read (u, v) of grad_out * w, planar, downsampling.

    The adjoint of ``planar_downsample_forward``, in its end-to-end layout: per channel pair,
    window row and column phase, one vector loop over all output rows of the task adds
    w * grad_out into accumulators laid out like the forward's spread (``_gather_phase_taps``),
    which are then folded back into source rows (``_collect_rows_by_parity``). A task owns the
    source rows s*y0 <= u < s*y1 of its output rows y0 <= y < y1 and, so that no two tasks write
    one row, also computes the neighbouring output rows whose windows reach into them.

    Tap by tap (one loop per tap, each loading and storing the accumulators), the kernel took
    10.1 ms at the benchmark shape, 2 threads; gathering a phase's taps in one loop, 8.9 ms
    (medians of 41 interleaved runs). Each source pixel still sums its taps in the same order, so
    the results are bit-identical to both. ``static_scale = static_size(s)`` serves the spread
    arithmetic, as in the forward; ``static_taps = static_phase_taps(k, s)``.
    """
    scale = len(static_scale)
    most = len(static_taps)
    n_batch, channels, in_h = grad_x.shape[0], grad_x.shape[1], grad_x.shape[2]
    out_h, out_w = grad_out.shape[2], grad_out.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    lead = most - 1
    n_chunks = (out_h + _GRAD_CHUNK - 1) // _GRAD_CHUNK
    n_tasks = n_batch * n_chunks
    while True:
        task = _take_task(next_task)
        if task >= n_tasks:
            break
        n = task // n_chunks
        y_own = (task % n_chunks) * _GRAD_CHUNK
        u0 = scale * y_own
        u1 = min(scale * min(y_own + _GRAD_CHUNK, out_h), in_h)
        y0 = max(y_own - r // scale, 0)
        y1 = min((u1 - 1 + r) // scale + 1, out_h)
        row0 = scale * y0 - r
        phases, pad, width, n_source_rows, span = _downsample_task_geometry(k, scale, out_w, y1 - y0)
        plane = _parity_buffer(max(n_source_rows, u1 - row0), scale, phases, width, grad_out)
        acc = np.zeros((2,) + plane.shape, dtype=grad_out.dtype)
        go = np.zeros((2, span + 2 * lead), dtype=grad_out.dtype)
        w_task = np.zeros((kk, span + 2 * lead), dtype=w.dtype)
        tap_phase, tap_start = _tap_slots(k, scale, False, pad)
        phase_count, phase_first = _phase_columns(tap_phase, phases)
        for g in range(groups):
            for t in range(kk):
                _rows_end_to_end(w, n, g * kk + t, y0, y1 - y0, w_task[:, lead:], t, width)
            last = (g + 1) * group_channels - 1
            for ca in range(g * group_channels, last + 1, 2):
                cb = min(ca + 1, last)
                _rows_end_to_end(grad_out, n, ca, y0, y1 - y0, go[:, lead:], 0, width)
                _rows_end_to_end(grad_out, n, cb, y0, y1 - y0, go[:, lead:], 1, width)
                acc[:] = 0
                for i in range(k):
                    for phase in range(phases):
                        count, first_j = phase_count[phase], phase_first[phase]
                        offset = (i // scale) * width + tap_start[first_j]
                        first_tap = i * k + first_j
                        if count == most:
                            _gather_phase_taps(acc, i % scale, phase, offset, go, w_task, first_tap, scale, lead,
                                               static_taps)
                        elif count > 0:
                            _gather_phase_taps(acc, i % scale, phase, offset, go, w_task, first_tap, scale, lead,
                                               static_taps[1:])
                _collect_rows_by_parity(acc[0], grad_x, n, ca, row0, u0, u1, scale, pad, width)
                _collect_rows_by_parity(acc[1], grad_x, n, cb, row0, u0, u1, scale, pad, width)


@numba.njit(inline="always")
def _load_channel(x, grad_out, n, c, present, spread, go, d, layout, scale):
    """Channel c's spread source rows and end-to-end output-gradient rows (go[d]) for the
    downsampling mask gradient, or zeros for a place of a channel set past the group's end (a
    zero term: exact, and no stale value times zero can turn into NaN). ``layout`` is the task's
    (row0, n_source_rows, y0, rows, pad, width)."""
    row0, n_source_rows, y0, rows, pad, width = layout
    if present:
        _spread_rows_by_parity(x, n, c, row0, n_source_rows, spread, scale, pad, width)
        _rows_end_to_end(grad_out, n, c, y0, rows, go, d, width)
    else:
        spread[:] = 0
        go[d, :] = 0


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def planar_downsample_backward_masks(grad_out, x, grad_w, k, groups, static_scale, task_rows, next_task):
    """grad_w[n, tap, y, xo] = sum over the tap's group channels of grad_out * x (0 off-map), planar, downsampling.

    In the end-to-end layout of ``planar_downsample_forward``: per set of channels and tap, one
    vector loop over all output rows of the task (row by row before: kernel medians at the
    benchmark shape, 2 threads, 12.5 -> 10.4 ms). Channels go four at a time, so each ``acc``
    row (kk rows of the whole task: more than L1 holds) is loaded and stored once per four
    channels (two before: 10.6 -> 10.1 ms); a group's last one or two channels go as a pair.
    Places past the group's end add exact zeros (``_load_channel``). A task covers ``task_rows``
    output rows (``downsample_task_rows``).
    """
    scale = len(static_scale)
    n_batch, channels = x.shape[0], x.shape[1]
    out_h, out_w = grad_w.shape[2], grad_w.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    n_chunks = (out_h + task_rows - 1) // task_rows
    n_tasks = n_batch * n_chunks
    while True:
        task = _take_task(next_task)
        if task >= n_tasks:
            break
        n, y0, y1, row0 = _chunk(task, n_chunks, out_h, scale, r, task_rows)
        rows = y1 - y0
        phases, pad, width, n_source_rows, span = _downsample_task_geometry(k, scale, out_w, rows)
        spread_a = _parity_buffer(n_source_rows, scale, phases, width, x)
        spread_b = np.zeros_like(spread_a)
        spread_c = np.zeros_like(spread_a)
        spread_d = np.zeros_like(spread_a)
        go = np.zeros((4, span), dtype=x.dtype)
        acc = np.empty((kk, span), dtype=x.dtype)
        tap_phase, tap_start = _tap_slots(k, scale, False, pad)
        layout = (row0, n_source_rows, y0, rows, pad, width)
        for g in range(groups):
            acc[:] = 0
            end = (g + 1) * group_channels
            for c0 in range(g * group_channels, end, 4):
                quad = end - c0 > 2
                _load_channel(x, grad_out, n, c0, True, spread_a, go, 0, layout, scale)
                _load_channel(x, grad_out, n, c0 + 1, c0 + 1 < end, spread_b, go, 1, layout, scale)
                if quad:
                    _load_channel(x, grad_out, n, c0 + 2, True, spread_c, go, 2, layout, scale)
                    _load_channel(x, grad_out, n, c0 + 3, c0 + 3 < end, spread_d, go, 3, layout, scale)
                for i in range(k):
                    parity = i % scale
                    for j in range(k):
                        phase = tap_phase[j]
                        source = max((i // scale) * width + max(tap_start[j], 0), 0)
                        t = i * k + j
                        if quad:
                            for f in range(span):
                                acc[t, f] += ((go[0, f] * spread_a[parity, phase, source + f]
                                               + go[1, f] * spread_b[parity, phase, source + f])
                                              + (go[2, f] * spread_c[parity, phase, source + f]
                                                 + go[3, f] * spread_d[parity, phase, source + f]))
                        else:
                            for f in range(span):
                                acc[t, f] += (go[0, f] * spread_a[parity, phase, source + f]
                                              + go[1, f] * spread_b[parity, phase, source + f])
            for t in range(kk):
                _rows_from_end_to_end(acc, t, grad_w, n, g * kk + t, y0, rows, width)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def planar_upsample_backward_features(grad_out, w, grad_x, k, groups, scale, static_scale, next_task):
    """grad_x[n, c, u, v] = sum over outputs and taps that read (u, v) of grad_out * w, planar, upsampling.

    A task owns one input row: per channel it gathers the contributions of every output row
    that reads it into a spread accumulator, then folds that back with ``_collect_row``.
    Channels go in pairs (a and b) that share each weight load, as in ``planar_downsample_forward``
    (kernel medians at the benchmark shape, 2 threads: 52 -> 43 ms; bit-identical results).
    ``static_scale = static_size(scale)`` serves only ``_collect_row``, as in
    ``planar_upsample_backward_masks``.
    """
    n_batch, channels, in_h = grad_x.shape[0], grad_x.shape[1], grad_x.shape[2]
    out_w = grad_out.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    phases, pad, width = _spread_geometry(k, scale, True, out_w)
    n_tasks = n_batch * in_h
    while True:
        task = _take_task(next_task)
        if task >= n_tasks:
            break
        n = task // in_h
        u = task % in_h
        acc_a = np.empty((1, phases, width), dtype=grad_out.dtype)
        acc_b = np.empty_like(acc_a)
        tap_phase, tap_start = _tap_slots(k, scale, True, pad)
        for g in range(groups):
            tap0 = g * kk
            last = (g + 1) * group_channels - 1
            for ca in range(g * group_channels, last + 1, 2):
                cb = min(ca + 1, last)
                acc_a[:] = 0
                acc_b[:] = 0
                for i in range(k):
                    base = u - (i - r)
                    if base < 0 or base >= in_h:
                        continue
                    for y in range(base * scale, base * scale + scale):
                        for j in range(k):
                            phase = tap_phase[j]
                            start = max(tap_start[j], 0)
                            tap = tap0 + i * k + j
                            for xo in range(out_w):
                                weight = w[n, tap, y, xo]
                                acc_a[0, phase, start + xo] += grad_out[n, ca, y, xo] * weight
                                acc_b[0, phase, start + xo] += grad_out[n, cb, y, xo] * weight
                _collect_row(acc_a, 0, grad_x, n, ca, u, len(static_scale), True, pad)
                _collect_row(acc_b, 0, grad_x, n, cb, u, len(static_scale), True, pad)


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def planar_upsample_backward_masks(grad_out, x, grad_w, k, groups, scale, static_scale, next_task):
    """grad_w[n, tap, y, xo] = sum over the tap's group channels of grad_out * x (0 off-map), planar, upsampling.

    A task covers the output rows of a few source rows (``_CHUNK``); the s output rows of a
    source row read the same spread rows. Channels go in pairs (a and b) with one ``acc`` update
    per pair (kernel medians at the benchmark shape, 2 threads: 32 -> 25 ms against one channel
    per update); a group with an odd channel count ends with a single channel. The spread takes
    the scale as the compile-time ``len(static_scale)`` (``static_scale = static_size(scale)``;
    20.4 -> 15.7 ms).
    """
    n_batch, channels, in_h = x.shape[0], x.shape[1], x.shape[2]
    out_h, out_w = grad_w.shape[2], grad_w.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    phases, pad, width = _spread_geometry(k, scale, True, out_w)
    n_chunks = (in_h + _CHUNK - 1) // _CHUNK
    n_tasks = n_batch * n_chunks
    while True:
        task = _take_task(next_task)
        if task >= n_tasks:
            break
        n, u0, u1, row0 = _chunk(task, n_chunks, in_h, 1, r, _CHUNK)
        y0 = u0 * scale
        y1 = min(u1 * scale, out_h)
        spread_a = np.zeros((u1 - u0 - 1 + k, phases, width), dtype=x.dtype)
        spread_b = np.zeros_like(spread_a)
        acc = np.empty((y1 - y0, kk, out_w), dtype=x.dtype)
        tap_phase, tap_start = _tap_slots(k, scale, True, pad)
        for g in range(groups):
            acc[:] = 0
            last = (g + 1) * group_channels - 1
            for ca in range(g * group_channels, last + 1, 2):
                cb = min(ca + 1, last)
                paired = cb > ca
                _spread_rows(x, n, ca, row0, spread_a, len(static_scale), True, pad)
                if paired:
                    _spread_rows(x, n, cb, row0, spread_b, len(static_scale), True, pad)
                for y in range(y0, y1):
                    q0 = y // scale - u0
                    for i in range(k):
                        if row0 + q0 + i < 0 or row0 + q0 + i >= in_h:
                            continue
                        for j in range(k):
                            phase = tap_phase[j]
                            start = max(tap_start[j], 0)
                            t = i * k + j
                            q = q0 + i
                            if paired:
                                for xo in range(out_w):
                                    acc[y - y0, t, xo] += (
                                        grad_out[n, ca, y, xo] * spread_a[q, phase, start + xo]
                                        + grad_out[n, cb, y, xo] * spread_b[q, phase, start + xo])
                            else:
                                for xo in range(out_w):
                                    acc[y - y0, t, xo] += grad_out[n, ca, y, xo] * spread_a[q, phase, start + xo]
            for y in range(y0, y1):
                for t in range(kk):
                    for xo in range(out_w):
                        grad_w[n, g * kk + t, y, xo] = acc[y - y0, t, xo]


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def nhwc_forward(x, w, out, k, groups, scale, upsample, next_task):
    """out[n, y, xo, c] = sum_taps w[n, tap, y, xo] * x[n, src(y) + i, src(xo) + j, c], channels-last."""
    n_batch, in_h, in_w, channels = x.shape
    out_h, out_w = w.shape[2], w.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    n_tasks = n_batch * out_h
    while True:
        row = _take_task(next_task)
        if row >= n_tasks:
            break
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
        out[n, y, :, :] = buf


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def nhwc_backward_features(grad_out, w, grad_x, k, groups, scale, upsample, next_task):
    """grad_x[n, u, v, c] = sum over outputs and taps that read (u, v) of grad_out * w (gather), channels-last."""
    n_batch, out_h, out_w, channels = grad_out.shape
    in_h, in_w = grad_x.shape[1], grad_x.shape[2]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    n_tasks = n_batch * in_h
    while True:
        row = _take_task(next_task)
        if row >= n_tasks:
            break
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
        grad_x[n, u, :, :] = buf


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def nhwc_backward_masks(grad_out, x, grad_w, k, groups, scale, upsample, zero, next_task):
    """grad_w[n, tap, y, xo] = sum over the tap's group channels of grad_out * x (0 off-map), channels-last.

    ``zero`` is a scalar of the array dtype, so the sums accumulate in that dtype.
    """
    n_batch, in_h, in_w, channels = x.shape
    out_h, out_w = grad_w.shape[2], grad_w.shape[3]
    group_channels = channels // groups
    r = (k - 1) // 2
    kk = k * k
    n_tasks = n_batch * out_h
    while True:
        row = _take_task(next_task)
        if row >= n_tasks:
            break
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
