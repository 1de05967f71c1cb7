"""PartialConv2d: renormalisation, mask update, independence from hole values, multi-channel masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inpaint.partial_conv import PartialConv2d


def random_validity(shape: tuple[int, ...], valid_fraction: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < valid_fraction).float()


def loop_partial_conv(conv: PartialConv2d, x: torch.Tensor, validity: torch.Tensor):
    """Partial convolution written out window by window (the paper's equation), for comparison."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    xp = F.pad(x * validity, (p, p, p, p))
    vp = F.pad(validity.expand_as(x), (p, p, p, p))
    n, _, h, w = x.shape
    out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = torch.zeros(n, conv.out_channels, out_h, out_w, dtype=torch.float64)
    new_validity = torch.zeros(n, 1, out_h, out_w, dtype=torch.float64)
    weight = conv.weight.double()
    for b in range(n):
        for y in range(out_h):
            for x_ in range(out_w):
                window = xp[b, :, y * s : y * s + k, x_ * s : x_ * s + k].double()
                valid = vp[b, :, y * s : y * s + k, x_ * s : x_ * s + k].double()
                count = valid.sum()
                if count == 0:
                    continue
                new_validity[b, 0, y, x_] = 1
                out[b, :, y, x_] = (weight * window).sum(dim=(1, 2, 3)) * valid.numel() / count
                if conv.bias is not None:
                    out[b, :, y, x_] += conv.bias.double()
    return out, new_validity


@pytest.mark.parametrize("mask_channels", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_windowed_definition(mask_channels: int, bias: bool) -> None:
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, 3, stride=2, padding=1, bias=bias)
    x = torch.randn(2, 3, 7, 8)
    validity = random_validity((2, mask_channels, 7, 8), 0.4, seed=1)
    out, new_validity = conv(x, validity)
    expected, expected_validity = loop_partial_conv(conv, x, validity)
    assert new_validity.shape == (2, 1, 4, 4)
    torch.testing.assert_close(new_validity.double(), expected_validity)
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)


def test_mask_update_marks_valid_iff_window_saw_a_valid_pixel() -> None:
    conv = PartialConv2d(1, 1, 5, stride=1, padding=2)
    validity = torch.zeros(1, 1, 12, 12)
    validity[0, 0, 3, 4] = 1  # one valid pixel: its 5x5 neighbourhood becomes valid
    _, new_validity = conv(torch.randn(1, 1, 12, 12), validity)
    expected = torch.zeros(1, 1, 12, 12)
    expected[0, 0, 1:6, 2:7] = 1
    assert torch.equal(new_validity, expected)


def test_hole_values_never_reach_the_output() -> None:
    torch.manual_seed(0)
    conv = PartialConv2d(3, 8, 7, stride=2, padding=3)
    x = torch.randn(2, 3, 20, 20)
    validity = random_validity((2, 1, 20, 20), 0.5, seed=2)
    changed = torch.where(validity.bool(), x, 100 * torch.randn_like(x))
    out, new_validity = conv(x, validity)
    out_changed, _ = conv(changed, validity)
    assert not torch.equal(x, changed)
    torch.testing.assert_close(out, out_changed)
    assert (out[new_validity.expand_as(out) == 0] == 0).all()


def test_fully_valid_windows_equal_a_plain_convolution() -> None:
    torch.manual_seed(0)
    conv = PartialConv2d(3, 8, 3, stride=1, padding=1)
    x = torch.randn(1, 3, 16, 16)
    validity = torch.ones(1, 1, 16, 16)
    validity[..., 5:9, 5:9] = 0
    out, _ = conv(x, validity)
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    fully_valid = F.conv2d(F.pad(validity, (1, 1, 1, 1)), torch.ones(1, 1, 3, 3)) == 9
    assert fully_valid.sum() > 100 and (~fully_valid).sum() > 0
    torch.testing.assert_close(out[fully_valid.expand_as(out)], plain[fully_valid.expand_as(plain)])


def test_rejects_a_mask_of_the_wrong_shape() -> None:
    conv = PartialConv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match="validity must have shape"):
        conv(torch.randn(1, 3, 8, 8), torch.ones(1, 2, 8, 8))
    with pytest.raises(ValueError, match="validity must have shape"):
        conv(torch.randn(1, 3, 8, 8), torch.ones(1, 1, 8, 9))
