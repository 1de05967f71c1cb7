"""The four generators (Global&Local / Partial-Conv U-Net, baseline / CARAFE++) and mask-aware CARAFE++."""

from __future__ import annotations

import pytest
import torch

from carafe_op import CARAFEDownsample, CARAFEUpsample, carafe, carafe_down
from inpaint import build_generator

VARIANTS = [(name, carafe) for name in ("global_local", "pconv_unet") for carafe in (False, True)]
IDS = [f"{name}{'-carafe' if carafe else ''}" for name, carafe in VARIANTS]
WIDTH = 1 / 16


def inputs(h: int, w: int, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, h, w, generator=generator) * 2 - 1
    mask = torch.zeros(batch, 1, h, w)
    mask[..., h // 4 : h // 2, w // 3 : 3 * w // 4] = 1
    mask[0, 0, -3:, :4] = 1
    return image, mask


@pytest.mark.parametrize(("name", "carafe"), VARIANTS, ids=IDS)
def test_output_shape_and_range_at_256(name: str, carafe: bool) -> None:
    model = build_generator(name, carafe=carafe, width=WIDTH).eval()
    image, mask = inputs(256, 256, batch=1)
    with torch.no_grad():
        out = model(image, mask)
    assert out.shape == (1, 3, 256, 256)
    assert out.abs().max() <= 1 and torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "carafe"), VARIANTS, ids=IDS)
@pytest.mark.parametrize("size", [(37, 45), (17, 33)])
def test_odd_sizes(name: str, carafe: bool, size: tuple[int, int]) -> None:
    model = build_generator(name, carafe=carafe, width=WIDTH).eval()
    image, mask = inputs(*size)
    with torch.no_grad():
        assert model(image, mask).shape == (2, 3, *size)


@pytest.mark.parametrize(
    ("name", "depth", "expected"),
    [("global_local", None, (2, 2)), ("pconv_unet", None, (7, 7)), ("pconv_unet", 4, (4, 4))],
)
def test_carafe_module_counts(name: str, depth: int | None, expected: tuple[int, int]) -> None:
    def count(model: torch.nn.Module) -> tuple[int, int]:
        modules = list(model.modules())
        down = sum(isinstance(m, CARAFEDownsample) for m in modules)
        return down, sum(isinstance(m, CARAFEUpsample) for m in modules)

    assert count(build_generator(name, carafe=True, width=WIDTH, depth=depth)) == expected
    baseline = build_generator(name, carafe=False, width=WIDTH, depth=depth)
    assert count(baseline) == (0, 0)
    strided = [m for m in baseline.modules() if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)]
    assert len(strided) == expected[0]  # one CARAFE++ down per strided conv of the baseline


@pytest.mark.parametrize(("name", "carafe"), VARIANTS, ids=IDS)
def test_gradients_reach_every_parameter(name: str, carafe: bool) -> None:
    torch.manual_seed(0)
    model = build_generator(name, carafe=carafe, width=WIDTH).train()
    # 128 px: the 7-level U-Net's deepest CARAFE++ still sees a 2x2 map. On a 1x1 map the
    # mask-aware reassembly returns its input whatever the kernels, so their gradient is 0.
    image, mask = inputs(128, 128)
    out = model(image, mask)
    (out * torch.randn_like(out)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize(("name", "carafe"), VARIANTS, ids=IDS)
def test_hole_pixels_are_never_read(name: str, carafe: bool) -> None:
    model = build_generator(name, carafe=carafe, width=WIDTH).train()  # batch statistics too
    image, mask = inputs(24, 28)
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    changed = torch.where(mask.bool(), noise, image)
    assert not torch.equal(changed, image)
    torch.testing.assert_close(model(image, mask), model(changed, mask), atol=1e-6, rtol=0)


@pytest.mark.parametrize("layer", [CARAFEDownsample(6), CARAFEUpsample(6)], ids=["down", "up"])
def test_mask_aware_carafe_keeps_hole_values_out(layer: torch.nn.Module) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6, 21, 22)
    validity = torch.ones(2, 1, 21, 22)
    validity[..., 3:11, 4:12] = 0
    changed = torch.where(validity.bool(), x, 1e3 * torch.randn_like(x))
    with torch.no_grad():
        out, new_validity = layer.forward_masked(x, validity)
        out_changed, _ = layer.forward_masked(changed, validity)
        plain, kernels = layer(x, return_kernels=True)
    torch.testing.assert_close(out, out_changed, atol=0, rtol=0)
    assert ((new_validity == 0) | (new_validity == 1)).all()
    assert (new_validity == 0).any() and (new_validity == 1).any()
    assert (out[(new_validity == 0).expand_as(out)] == 0).all()
    # Where every tap is valid, the mask-aware output equals plain CARAFE++.
    p = layer.predictor
    reassemble = carafe if p.upsample else carafe_down
    window_validity = reassemble(validity, torch.ones_like(kernels), p.kernel_size, 1, p.scale_factor)
    fully_valid = (window_validity == p.kernel_size**2).expand_as(out)
    assert fully_valid.any()
    torch.testing.assert_close(out[fully_valid], plain[fully_valid], atol=1e-5, rtol=1e-5)


def test_build_generator_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="generator name"):
        build_generator("unet")
    with pytest.raises(ValueError, match="width"):
        build_generator("global_local", width=0)
    with pytest.raises(ValueError, match="depth"):
        build_generator("pconv_unet", depth=0)
    with pytest.raises(ValueError, match="depth"):
        build_generator("global_local", depth=-1)


def test_width_and_depth_shrink_the_model() -> None:
    def params(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    for name in ("global_local", "pconv_unet"):
        assert params(build_generator(name, width=0.25)) < params(build_generator(name, width=0.5))
        assert params(build_generator(name, width=0.25, depth=2)) < params(build_generator(name, width=0.25))
