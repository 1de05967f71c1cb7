"""CARAFEUpsample / CARAFEDownsample: shapes, target sizes, normalised kernels, init, masked forms."""

import pytest
import torch

from carafe_op import CARAFEDownsample, CARAFEUpsample


@pytest.mark.parametrize("scale", [1, 2, 3])
@pytest.mark.parametrize("size", [(8, 8), (7, 11)])
def test_upsample_shapes_and_kernels(scale, size):
    layer = CARAFEUpsample(16, scale_factor=scale, compressed_channels=8, groups=2)
    x = torch.randn(2, 16, *size)
    y, kernels = layer(x, return_kernels=True)
    assert y.shape == (2, 16, size[0] * scale, size[1] * scale)
    assert kernels.shape == (2, 2 * 25, size[0] * scale, size[1] * scale)
    sums = kernels.view(2, 2, 25, *kernels.shape[-2:]).sum(dim=2)
    torch.testing.assert_close(sums, torch.ones_like(sums))


@pytest.mark.parametrize("scale", [2, 3])
@pytest.mark.parametrize("size", [(8, 8), (7, 11)])
def test_downsample_shapes_and_kernels(scale, size):
    layer = CARAFEDownsample(16, scale_factor=scale, compressed_channels=4, groups=4)
    y, kernels = layer(torch.randn(2, 16, *size), return_kernels=True)
    expected = (-(-size[0] // scale), -(-size[1] // scale))
    assert y.shape == (2, 16, *expected)
    sums = kernels.view(2, 4, 25, *expected).sum(dim=2)
    torch.testing.assert_close(sums, torch.ones_like(sums))


def test_upsample_to_odd_skip_size():
    """x2 of a ceil-downsampled 75-pixel map (38) must land back on 75."""
    x75 = torch.randn(1, 8, 75, 61)
    low = CARAFEDownsample(8, compressed_channels=4)(x75)
    assert low.shape[-2:] == (38, 31)
    up = CARAFEUpsample(8, compressed_channels=4)
    assert up(low, output_size=x75.shape[-2:]).shape == x75.shape
    with pytest.raises(ValueError, match="output_size"):
        up(low, output_size=(74, 61))
    with pytest.raises(ValueError, match="output_size"):
        up(low, output_size=(77, 61))


def test_fresh_layer_is_close_to_box_filter():
    """N(0, 0.001) encoder init: kernels start near uniform 1/k^2."""
    layer = CARAFEUpsample(8, compressed_channels=4)
    _, kernels = layer(torch.randn(1, 8, 6, 6), return_kernels=True)
    torch.testing.assert_close(kernels, torch.full_like(kernels, 1 / 25), atol=1e-3, rtol=0)
    assert layer.predictor.encoder.weight.std() < 0.002


def test_gradients_reach_every_parameter():
    up = CARAFEUpsample(8, compressed_channels=4)
    down = CARAFEDownsample(8, compressed_channels=4, compressor_norm=True)
    out = up(down(torch.randn(2, 8, 9, 9)), output_size=(9, 9))
    out.square().sum().backward()
    for name, parameter in [*up.named_parameters(), *down.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_masked_forms_keep_holes_out():
    x = torch.randn(1, 8, 12, 12)
    validity = torch.ones(1, 1, 12, 12)
    validity[..., 3:9, 3:9] = 0
    garbage = x + (1 - validity) * 100
    down = CARAFEDownsample(8, compressed_channels=4)
    up = CARAFEUpsample(8, compressed_channels=4)
    low, low_validity = down.forward_masked(x, validity)
    low_g, _ = down.forward_masked(garbage, validity)
    torch.testing.assert_close(low, low_g)
    high, high_validity = up.forward_masked(low, low_validity, output_size=(12, 12))
    assert high.shape == x.shape and high_validity.shape == (1, 1, 12, 12)


def test_module_rejects_bad_configuration():
    with pytest.raises(ValueError, match="kernel_size"):
        CARAFEUpsample(8, kernel_size=4)
    with pytest.raises(ValueError, match="encoder_kernel"):
        CARAFEDownsample(8, encoder_kernel=2)
    with pytest.raises(TypeError, match="scale_factor"):
        CARAFEUpsample(8, scale_factor=1.5)
