"""CUDA backend of carafe_op.

Everywhere (CI has no GPU): every kernel instantiation compiles through NVRTC for sm_75, sm_80
and sm_90, and the launch planning picks only compiled instantiations. With a CUDA device:
outputs and both gradients against the reference and the CPU backend, gradcheck in fp64,
fp16/bf16 against fp32, determinism, 64-bit indexing, layouts, torch.compile, mmcv golden data.
"""

from __future__ import annotations

import importlib
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from carafe_op import CARAFEUpsample, backend_name, carafe, carafe_down, reassemble_reference
from carafe_op.cuda import kernels
from carafe_op.cuda.launch import backward_launches, forward_launch
from carafe_op.layout import output_memory_format

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "mmcv_carafe"


# ---------------------------------------------------------------- no GPU needed


@pytest.mark.parametrize("arch", [75, 80, 90])
def test_nvrtc_compiles_every_instantiation(arch: int) -> None:
    from carafe_op.cuda.nvrtc_check import compile_cubin

    cubin, lowered = compile_cubin(arch)
    assert cubin.startswith(b"\x7fELF")
    assert set(lowered) == set(kernels.name_expressions())
    assert len(set(lowered.values())) == len(lowered), "two name expressions lowered to one symbol"
    for dtype in kernels.CUDA_TYPES:
        for kernel in kernels.KERNELS:
            assert any(e.startswith(f"{kernel}<{kernels.CUDA_TYPES[dtype]},") for e in lowered)


def test_nvrtc_name_expressions_are_grouped_per_dtype_and_layout() -> None:
    """The runtime compiles one module per (dtype, layout); together they are the CI set."""
    groups = [kernels.name_expressions((d,), (cl,)) for d in kernels.CUDA_TYPES for cl in (False, True)]
    assert sorted(itertools.chain(*groups)) == sorted(kernels.name_expressions())
    assert len(set(kernels.name_expressions())) == len(kernels.name_expressions()) == 48


def _plan(dtype, channels, group_size, channels_last=False, misaligned=False, upsample=True):
    n, h, w, k, s = 2, 5, 6, 3, 2
    shape = (n, channels, h, w)
    if misaligned:  # a channels-last view one element past an aligned start
        flat = torch.zeros(n * channels * h * w + 1, dtype=dtype)[1:]
        features = flat.as_strided(shape, (h * w * channels, 1, w * channels, channels))
    else:
        features = torch.zeros(shape, dtype=dtype)
        if channels_last:
            features = features.contiguous(memory_format=torch.channels_last)
    out_size = (h * s, w * s) if upsample else (-(-h // s), -(-w // s))
    masks = torch.zeros(n, group_size * k * k, *out_size, dtype=dtype)
    grad = torch.zeros(n, channels, *out_size, dtype=dtype)
    out, forward = forward_launch(features, masks, k, group_size, s, upsample)
    grad_features, grad_masks, backward = backward_launches(grad, features, masks, k, group_size, s, upsample)
    return out, grad_features, grad_masks, (forward, *backward)


@pytest.mark.parametrize("dtype", list(kernels.CUDA_TYPES))
@pytest.mark.parametrize(
    ("channels", "groups", "channels_last", "misaligned", "wide"),
    [(16, 2, False, False, True), (6, 2, False, False, False), (32, 4, True, False, True),
     (12, 4, True, False, False), (16, 1, True, True, False)],
)
def test_launch_plans_use_compiled_instantiations(dtype, channels, groups, channels_last, misaligned, wide) -> None:
    out, grad_features, grad_masks, launches = _plan(dtype, channels, groups, channels_last, misaligned)
    layout = channels_last or misaligned
    vec = kernels.vector_widths(dtype, layout)[1] if wide else 1
    for launch in launches:
        assert launch.kernel in kernels.name_expressions((dtype,), (layout,))
        assert launch.kernel.endswith(f", {vec}, {'true' if layout else 'false'}>")
    forward, backward_features, backward_masks = launches
    assert forward.total == 2 * 10 * 12 * channels // vec
    assert backward_features.total == 2 * 5 * 6 * channels // vec
    assert backward_masks.total == 2 * 10 * 12 * groups * 9
    assert out.is_contiguous(memory_format=torch.channels_last if layout else torch.contiguous_format)
    assert grad_features.is_contiguous(memory_format=torch.channels_last)
    assert grad_masks.is_contiguous(memory_format=torch.channels_last)


def test_launch_rejects_axes_beyond_32_bits() -> None:
    features = torch.empty(2, 4, 2**30, 1, device="meta")
    masks = torch.empty(2, 9, 2**30, 1, device="meta")
    with pytest.raises(ValueError, match="N\\*H"):
        forward_launch(features, masks, 3, 1, 1, True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_cuda_backend_import_raises_import_error_without_cuda() -> None:
    with pytest.raises(ImportError):
        importlib.import_module("carafe_op.cuda_backend")


# ---------------------------------------------------------------- CUDA device


def _inputs(n, channels, h, w, k, groups, scale, upsample, dtype=torch.float32, device="cuda", seed=0):
    """Features, softmax-normalised masks and an output gradient, as in real use."""
    gen = torch.Generator().manual_seed(seed)
    out_h, out_w = (h * scale, w * scale) if upsample else (-(-h // scale), -(-w // scale))
    features = torch.randn(n, channels, h, w, generator=gen, dtype=torch.float64)
    logits = torch.randn(n, groups, k * k, out_h, out_w, generator=gen, dtype=torch.float64)
    masks = logits.softmax(dim=2).reshape(n, groups * k * k, out_h, out_w)
    grad = torch.randn(n, channels, out_h, out_w, generator=gen, dtype=torch.float64)
    return (t.to(device=device, dtype=dtype) for t in (features, masks, grad))


def _run(features, masks, grad, k, groups, scale, upsample):
    """Output and both gradients through the public API (custom op + autograd)."""
    features = features.detach().requires_grad_()
    masks = masks.detach().requires_grad_()
    op = carafe if upsample else carafe_down
    out = op(features, masks, k, groups, scale)
    grad_features, grad_masks = torch.autograd.grad(out, (features, masks), grad)
    return out.detach(), grad_features, grad_masks


def _reference(features, masks, grad, k, groups, scale, upsample):
    features = features.detach().cpu().double().requires_grad_()
    masks = masks.detach().cpu().double().requires_grad_()
    out = reassemble_reference(features, masks, k, groups, scale, upsample)
    grad_features, grad_masks = torch.autograd.grad(out, (features, masks), grad.cpu().double())
    return out.detach(), grad_features, grad_masks


def _assert_all_close(actual, expected, atol, rtol):
    for name, a, e in zip(("output", "grad_features", "grad_masks"), actual, expected, strict=True):
        a, e = a.cpu().double(), e.cpu().double()
        torch.testing.assert_close(a, e, atol=atol, rtol=rtol, msg=lambda message, name=name: f"{name}: {message}")


@requires_cuda
def test_cuda_backend_is_used() -> None:
    assert backend_name(torch.device("cuda")) == "cuda"


@requires_cuda
@pytest.mark.parametrize("upsample", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_cuda_matches_reference_and_cpu(k: int, scale: int, groups: int, upsample: bool) -> None:
    assert backend_name(torch.device("cuda")) == "cuda"
    for group_channels in (3, 8):  # 3: one channel per thread; 8: the wide (vector) path
        args = (k, groups, scale, upsample)
        features, masks, grad = _inputs(2, groups * group_channels, 5, 7, *args)
        for layout in (torch.contiguous_format, torch.channels_last):
            cuda = _run(features.contiguous(memory_format=layout), masks, grad, *args)
            _assert_all_close(cuda, _reference(features, masks, grad, *args), atol=1e-5, rtol=1e-4)
            cpu = _run(features.cpu(), masks.cpu(), grad.cpu(), *args)
            _assert_all_close(cuda, cpu, atol=1e-5, rtol=1e-4)


@requires_cuda
@pytest.mark.parametrize("upsample", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_cuda_gradcheck_fp64(upsample: bool, layout: torch.memory_format) -> None:
    k, groups, scale = 3, 2, 2
    features, masks, _ = _inputs(1, 4, 4, 5, k, groups, scale, upsample, dtype=torch.float64)
    features = features.contiguous(memory_format=layout).requires_grad_()
    masks = masks.requires_grad_()
    op = carafe if upsample else carafe_down
    assert torch.autograd.gradcheck(lambda f, m: op(f, m, k, groups, scale), (features, masks))


@requires_cuda
@pytest.mark.parametrize("upsample", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float16, 1e-2), (torch.bfloat16, 4e-2)], ids=["fp16", "bf16"])
def test_cuda_low_precision_matches_fp32(upsample, layout, dtype, tolerance) -> None:
    """fp16/bf16 accumulate in fp32 and round once per output: the error is about one unit of the
    storage precision (2^-11 for fp16, 2^-8 for bf16) of the result; the stated tolerance
    (atol = rtol = 1e-2 for fp16, 4e-2 for bf16) leaves a few units of margin."""
    args = (5, 2, 2, upsample)
    features, masks, grad = _inputs(2, 32, 9, 11, *args)
    features, masks, grad = (t.to(dtype) for t in (features, masks, grad))  # the same rounded inputs
    low = _run(features.contiguous(memory_format=layout), masks, grad, *args)
    assert all(t.dtype == dtype for t in low)
    full = _run(*(t.float().contiguous(memory_format=layout) for t in (features, masks, grad)), *args)
    _assert_all_close(low, full, atol=tolerance, rtol=tolerance)


@requires_cuda
@pytest.mark.parametrize("upsample", [True, False], ids=["up", "down"])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_cuda_backward_is_deterministic(upsample: bool, layout: torch.memory_format) -> None:
    args = (5, 4, 2, upsample)
    features, masks, grad = _inputs(2, 64, 33, 31, *args)
    features = features.contiguous(memory_format=layout)
    first = _run(features, masks, grad, *args)
    second = _run(features, masks, grad, *args)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


@requires_cuda
def test_cuda_large_group_times_taps() -> None:
    """G*k*k = 4*121 = 484 is past mmcv's 384-entry shared buffer; here it has no limit."""
    args = (11, 4, 2, True)
    features, masks, grad = _inputs(1, 8, 6, 5, *args)
    _assert_all_close(_run(features, masks, grad, *args), _reference(features, masks, grad, *args), 1e-5, 1e-4)


@requires_cuda
def test_cuda_indices_beyond_32_bits() -> None:
    """masks has N*G*k*k*sH*sW > 2**31 elements (fp16, ~4.3 GB; its gradient as much again), so
    mask offsets and the mask-gradient work index overflow 32 bits. Only the bottom rows, where
    the offsets are largest, are compared with the reference (on a crop of the inputs)."""
    free, _ = torch.cuda.mem_get_info()
    if free < 16 * 2**30:
        pytest.skip("needs 16 GiB of free GPU memory")
    n, channels, groups, k, scale, size = 1, 4, 4, 7, 2, 1664
    taps = groups * k * k
    assert n * taps * (scale * size) ** 2 > 2**31
    gen = torch.Generator(device="cuda").manual_seed(0)
    features = torch.randn(n, channels, size, size, device="cuda", dtype=torch.float16, generator=gen)
    masks = torch.rand(n, taps, scale * size, scale * size, device="cuda", dtype=torch.float16, generator=gen)
    grad = torch.randn(n, channels, scale * size, scale * size, device="cuda", dtype=torch.float16, generator=gen)
    out, grad_features, grad_masks = _run(features, masks, grad, k, groups, scale, True)
    crop, r = 6, k // 2  # input rows in the crop; the top r of them lack context above
    expected = _reference(
        features[..., -crop:, :], masks[..., -scale * crop:, :], grad[..., -scale * crop:, :], k, groups, scale, True
    )
    keep_out, keep_in = scale * (crop - r), crop - r
    actual = (out[..., -keep_out:, :], grad_features[..., -keep_in:, :], grad_masks[..., -keep_out:, :])
    expected = (expected[0][..., -keep_out:, :], expected[1][..., -keep_in:, :], expected[2][..., -keep_out:, :])
    _assert_all_close(actual, expected, atol=2e-2, rtol=2e-2)


@requires_cuda
def test_cuda_non_contiguous_and_channels_last_inputs() -> None:
    k, groups, scale = 5, 2, 2
    for upsample in (True, False):
        args = (k, groups, scale, upsample)
        wide, masks, grad = _inputs(2, 32, 9, 7, *args)
        _, _, grad_half = _inputs(2, 16, 9, 7, *args)
        variants = {
            "channel slice": wide[:, ::2],
            "transposed": wide[:, :16].transpose(2, 3).contiguous().transpose(2, 3),
            "channels_last": wide[:, :16].contiguous(memory_format=torch.channels_last),
            "channels_last batch slice": wide[:, :16].contiguous(memory_format=torch.channels_last)[1:],
        }
        mask_variants = {
            "contiguous": masks,
            "channels_last": masks.contiguous(memory_format=torch.channels_last),
            "transposed": masks.transpose(2, 3).contiguous().transpose(2, 3),
        }
        for (name, features), m in itertools.product(variants.items(), mask_variants.values()):
            g = grad_half[: features.shape[0]]
            m = m[: features.shape[0]]
            expanded = torch.ones_like(g[:1, :1, :1, :1]).expand_as(g)  # what out.sum().backward() sends
            for g_variant in (g, g.contiguous(memory_format=torch.channels_last), expanded):
                cuda = _run(features, m, g_variant, *args)
                assert cuda[0].is_contiguous(memory_format=output_memory_format(features)), name
                _assert_all_close(cuda, _reference(features, m, g_variant, *args), atol=1e-5, rtol=1e-4)


@requires_cuda
def test_cuda_torch_compile_of_module() -> None:
    torch.manual_seed(0)
    layer = CARAFEUpsample(16, scale_factor=2, compressed_channels=8, kernel_size=5).cuda()
    x = torch.randn(2, 16, 9, 11, device="cuda")
    compiled = torch.compile(layer, fullgraph=True)
    for inputs in (x, x.contiguous(memory_format=torch.channels_last)):
        eager_in = inputs.clone().requires_grad_()
        compiled_in = inputs.clone().requires_grad_()
        eager = layer(eager_in)
        result = compiled(compiled_in)
        torch.testing.assert_close(result, eager, atol=1e-5, rtol=1e-4)
        (eager * eager).sum().backward()
        (result * result).sum().backward()
        torch.testing.assert_close(compiled_in.grad, eager_in.grad, atol=1e-4, rtol=1e-4)


@requires_cuda
@pytest.mark.skipif(not GOLDEN.is_dir(), reason=f"mmcv golden data not found at {GOLDEN}")
def test_cuda_matches_mmcv_golden_data() -> None:
    def load(name, shape):
        return torch.from_numpy(np.fromfile(GOLDEN / f"{name}.bin", dtype=np.float32).reshape(shape)).cuda()

    features = load("carafe_feat", (2, 64, 3, 3)).requires_grad_()
    masks = load("carafe_mask", (2, 100, 6, 6)).requires_grad_()
    out = carafe(features, masks, 5, 4, 2)
    out.sum().backward()
    torch.testing.assert_close(out, load("carafe_output", (2, 64, 6, 6)), atol=1e-3, rtol=0)
    torch.testing.assert_close(features.grad, load("carafe_feat_grad", (2, 64, 3, 3)), atol=1e-3, rtol=0)
    torch.testing.assert_close(masks.grad, load("carafe_mask_grad", (2, 100, 6, 6)), atol=1e-3, rtol=0)
