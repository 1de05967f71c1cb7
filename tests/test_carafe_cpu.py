"""The public ops (numba CPU kernel) against the reference: outputs, gradients, layouts."""

import contextlib
import itertools
import multiprocessing
import os
import sys
import warnings

import numpy as np
import pytest
import torch
from carafe_cases import random_case
from conftest import SHARED

from carafe_op import backend_name, carafe, carafe_down, cpu_kernels, reassemble_reference, thread_team

GRID = list(itertools.product([1, 3, 5, 7], [1, 2, 3, 4], [1, 2, 4], [True, False]))
SMALL_GRID = list(itertools.product([1, 3, 5], [1, 2, 3], [1, 2], [True, False]))


def op(upsample):
    return carafe if upsample else carafe_down


def test_cpu_backend_is_compiled():
    assert backend_name("cpu") == "cpu"


def _grads(fn, features, masks, grad):
    features = features.detach().clone().requires_grad_()
    masks = masks.detach().clone().requires_grad_()
    out = fn(features, masks)
    out.backward(grad)
    return out.detach(), features.grad, masks.grad


@pytest.mark.parametrize("k,scale,groups,upsample", GRID)
def test_kernel_matches_reference_fp64(k, scale, groups, upsample):
    features, masks = random_case(2, 3 * groups, 5, 6, k, groups, scale, upsample)
    grad = torch.randn_like(reassemble_reference(features, masks, k, groups, scale, upsample))
    ours = _grads(lambda f, m: op(upsample)(f, m, k, groups, scale), features, masks, grad)
    ref = _grads(lambda f, m: reassemble_reference(f, m, k, groups, scale, upsample), features, masks, grad)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k,scale,groups,upsample", GRID)
def test_gradcheck_fp64(k, scale, groups, upsample):
    features, masks = random_case(1, 2 * groups, 3, 4, k, groups, scale, upsample)
    features.requires_grad_()
    masks.requires_grad_()
    assert torch.autograd.gradcheck(lambda f, m: op(upsample)(f, m, k, groups, scale), (features, masks),
                                    fast_mode=True)


@pytest.mark.parametrize("upsample", [True, False])
def test_gradcheck_full_all_borders(upsample):
    features, masks = random_case(1, 4, 3, 3, 5, 2, 2, upsample)
    features.requires_grad_()
    masks.requires_grad_()
    assert torch.autograd.gradcheck(lambda f, m: op(upsample)(f, m, 5, 2, 2), (features, masks))


def _layout(tensor, layout):
    if layout == "channels_last":
        return tensor.contiguous(memory_format=torch.channels_last)
    if layout == "non_contiguous":
        wide = torch.cat([tensor, tensor], dim=-1)
        return wide[..., ::2]
    return tensor.contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "non_contiguous", "channels_last"])
@pytest.mark.parametrize("upsample", [True, False])
def test_layouts_and_dtypes(dtype, layout, upsample):
    k, groups, scale = 5, 2, 2
    features, masks = random_case(2, 8, 7, 9, k, groups, scale, upsample, dtype=dtype)
    features, masks = _layout(features, layout), _layout(masks, layout)
    assert layout == "contiguous" or not features.is_contiguous()
    grad = _layout(torch.randn_like(reassemble_reference(features, masks, k, groups, scale, upsample)), layout)
    ours = _grads(lambda f, m: op(upsample)(f, m, k, groups, scale), features, masks, grad)
    ref = _grads(lambda f, m: reassemble_reference(f, m, k, groups, scale, upsample), features, masks, grad)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    for a, b in zip(ours, ref, strict=True):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b, **tol)
    expected_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert ours[0].is_contiguous(memory_format=expected_format)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("k,scale,groups,upsample", SMALL_GRID)
def test_planar_and_channels_last_kernels_match_reference(layout, k, scale, groups, upsample):
    """Contiguous inputs run the planar kernels, channels-last ones the NHWC kernels. Odd sizes, and
    more rows than one planar task covers (``cpu_kernels._CHUNK`` row blocks for upsampling; for
    downsampling up to ``_MAX_TASK_ROWS`` output rows, and the feature gradient's tasks cover
    ``_GRAD_CHUNK`` output rows, s times as many input rows), so the tasks' shared borders are
    tested too."""
    height = 19 if upsample else 53
    features, masks = random_case(2, 3 * groups, height, 7, k, groups, scale, upsample)
    features = _layout(features, layout)
    grad = _layout(torch.randn_like(reassemble_reference(features, masks, k, groups, scale, upsample)), layout)
    ours = _grads(lambda f, m: op(upsample)(f, m, k, groups, scale), features, masks, grad)
    ref = _grads(lambda f, m: reassemble_reference(f, m, k, groups, scale, upsample), features, masks, grad)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    assert ours[0].is_contiguous(memory_format=memory_format)
    assert ours[1].is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("group_channels", range(1, 10))
def test_downsampling_mask_gradient_for_every_channel_tail(group_channels):
    """The planar downsampling mask gradient takes a group's channels four at a time: full sets,
    a last set of three, two or one (zero terms in the free places), in each of two groups."""
    features, masks = random_case(2, 2 * group_channels, 21, 11, 5, 2, 2, False)
    grad = torch.randn(2, 2 * group_channels, *masks.shape[-2:], dtype=torch.float64)
    ours = _grads(lambda f, m: carafe_down(f, m, 5, 2, 2), features, masks, grad)
    ref = _grads(lambda f, m: reassemble_reference(f, m, 5, 2, 2, False), features, masks, grad)
    for a, b in zip(ours, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("threads", [1, 2, 64])
def test_downsample_task_rows_keep_threads_busy(threads):
    """Up to 16 output rows per task, fewer where that would leave threads without two tasks."""
    from carafe_op.cpu_kernels import downsample_task_rows

    rows = downsample_task_rows(2, 64, threads)
    assert 4 <= rows <= 16
    tasks = 2 * -(-64 // rows)
    assert tasks >= 2 * threads or rows == 4
    assert downsample_task_rows(2, 64, 1) == 16


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_cpu_computes_in_fp32(dtype):
    features, masks = random_case(1, 4, 6, 6, 3, 1, 2, True, dtype=torch.float32)
    out = carafe(features.to(dtype), masks.to(dtype), 3, 1, 2)
    assert out.dtype == dtype
    expected = reassemble_reference(features.to(dtype).float(), masks.to(dtype).float(), 3, 1, 2, True)
    torch.testing.assert_close(out.float(), expected, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("upsample", [True, False])
def test_backward_is_deterministic(layout, upsample):
    features, masks = random_case(2, 16, 19, 9, 5, 4, 2, upsample, dtype=torch.float32)
    features = _layout(features, layout)
    grad = _layout(torch.randn(2, 16, *masks.shape[-2:]), layout)
    first = _grads(lambda f, m: op(upsample)(f, m, 5, 4, 2), features, masks, grad)
    second = _grads(lambda f, m: op(upsample)(f, m, 5, 4, 2), features, masks, grad)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@contextlib.contextmanager
def _torch_threads(count):
    """torch (and with it the CPU kernels) on ``count`` intra-op threads for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("upsample", [True, False])
def test_results_do_not_depend_on_thread_count(layout, upsample):
    """Threads take tasks from a shared counter (``cpu_kernels._take_task``): one thread must do
    every task, and so must several, each task exactly once."""
    features, masks = random_case(2, 16, 37, 9, 5, 4, 2, upsample, dtype=torch.float32)
    features = _layout(features, layout)
    grad = _layout(torch.randn(2, 16, *masks.shape[-2:]), layout)
    results = []
    for count in (1, 2):
        with _torch_threads(count):
            results.append(_grads(lambda f, m: op(upsample)(f, m, 5, 4, 2), features, masks, grad))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


@pytest.fixture(params=["torch_openmp", "fallback_pool"])
def team(request, monkeypatch):
    """``thread_team`` on torch's OpenMP threads, and with its fallback pool."""
    if request.param == "torch_openmp" and not thread_team.uses_torch_openmp():
        pytest.skip("torch does not run its parallel loops on GNU OpenMP here")
    if request.param == "fallback_pool":
        monkeypatch.setattr(thread_team, "_gomp_parallel", None)
    return thread_team


def test_more_threads_than_tasks_run_every_task_once(team):
    """Threads beyond the task count find no task left and stop; the result is one thread's."""
    features, masks = random_case(1, 6, 9, 7, 3, 1, 2, False, dtype=torch.float32)
    x, w = features.numpy(), masks.numpy()
    outs = []
    for threads in (1, 7):
        out = np.full((1, 6, *w.shape[-2:]), np.nan, dtype=np.float32)
        team.run(cpu_kernels.planar_downsample_forward, x, w, out, cpu_kernels.static_size(3),
                 cpu_kernels.static_size(2), 1, 4, threads=threads)
        outs.append(out)
    expected = reassemble_reference(features, masks, 3, 1, 2, False).numpy()
    np.testing.assert_allclose(outs[0], expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(outs[0], outs[1])


def test_thread_team_raises_what_a_thread_raised(team):
    calls = []

    def kernel(next_task):
        calls.append(next_task)
        raise ValueError("from a worker")

    with pytest.raises(ValueError, match="from a worker"):
        team.run(kernel, threads=2)
    assert len(calls) == 2 and calls[0] is calls[1]  # two threads, one shared counter


@pytest.mark.skipif(sys.platform != "linux" or "parallel backend: OpenMP" not in torch.__config__.parallel_info(),
                    reason="torch's Linux wheels run their parallel loops on GNU OpenMP")
def test_kernels_run_on_torch_openmp_threads_on_linux():
    """Not silently on a second pool, which competes with torch's spinning OpenMP threads."""
    assert thread_team.uses_torch_openmp()


def _op_in_forked_child(queue, features, masks):
    torch.set_num_threads(2)
    queue.put(carafe_down(features, masks, 5, 1, 2).numpy())  # numpy: a tensor would travel by fd


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_op_with_two_threads_in_a_forked_child():
    """After the parent ran the op on two threads, a forked child can too (on the fallback pool:
    GNU OpenMP hangs in a forked child) and gets the parent's result."""
    features, masks = random_case(2, 16, 33, 31, 5, 1, 2, False, dtype=torch.float32)
    with _torch_threads(2):
        expected = carafe_down(features, masks, 5, 1, 2)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_op_in_forked_child, args=(queue, features, masks))
    child.start()
    try:
        result = queue.get(timeout=60)
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    np.testing.assert_array_equal(result, expected.numpy())


def _golden(name, shape):
    path = f"{SHARED}/testdata/mmcv_carafe/{name}.bin"
    return torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(shape))


def test_matches_mmcv_golden_data():
    """mmcv's CUDA CARAFE(k=5, G=4, s=2) output and gradients of output.sum()."""
    features = _golden("carafe_feat", (2, 64, 3, 3)).requires_grad_()
    masks = _golden("carafe_mask", (2, 100, 6, 6)).requires_grad_()
    out = carafe(features, masks, 5, 4, 2)
    out.sum().backward()
    torch.testing.assert_close(out, _golden("carafe_output", (2, 64, 6, 6)), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(features.grad, _golden("carafe_feat_grad", (2, 64, 3, 3)), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(masks.grad, _golden("carafe_mask_grad", (2, 100, 6, 6)), atol=1e-3, rtol=1e-3)


def test_opcheck_custom_op():
    """torch.library's own consistency checks: schema, fake tensor, autograd registration."""
    features, masks = random_case(1, 4, 5, 5, 3, 2, 2, True)
    features.requires_grad_()
    masks.requires_grad_()
    torch.library.opcheck(torch.ops.carafe_op.reassemble.default, (features, masks, 3, 2, 2, True))


def test_torch_compile_has_no_graph_break():
    from carafe_op import CARAFEUpsample

    layer = CARAFEUpsample(8, compressed_channels=4).double()
    x = torch.randn(1, 8, 6, 7, dtype=torch.float64)
    explanation = torch._dynamo.explain(layer)(x)
    assert explanation.graph_break_count == 0
    compiled = torch.compile(layer, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x))


def test_flop_counter_counts_reassembly():
    from torch.utils.flop_counter import FlopCounterMode

    features, masks = random_case(2, 8, 5, 5, 5, 2, 2, True, dtype=torch.float32)
    features.requires_grad_()
    with FlopCounterMode(display=False) as counter:
        carafe(features, masks, 5, 2, 2).sum().backward()
    forward = 2 * 2 * 8 * 10 * 10 * 25
    assert counter.get_total_flops() == 3 * forward


def test_fallback_to_reference_warns_once(monkeypatch):
    """Where the compiled backend cannot load, the reference serves, with one clear warning."""
    from carafe_op import dispatch

    monkeypatch.setitem(dispatch._BACKEND_MODULES, "cpu", "carafe_op.no_such_backend")
    monkeypatch.setattr(dispatch, "_backends", {})
    features, masks = random_case(1, 4, 5, 5, 3, 1, 2, True)
    with pytest.warns(RuntimeWarning, match="compiled cpu backend unavailable.*reference"):
        out = carafe(features, masks, 3, 1, 2)
    torch.testing.assert_close(out, reassemble_reference(features, masks, 3, 1, 2, True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        carafe(features, masks, 3, 1, 2)
    assert backend_name("cpu") == "reference"
