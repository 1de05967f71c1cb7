"""engine.kernel_views: captured CARAFE kernels map output pixels to the right input taps, and render."""

import numpy as np
import pytest
import torch
from torch import nn

from carafe_op import CARAFEDownsample, CARAFEUpsample
from engine.kernel_views import KernelCapture, capture_kernels, pick_layers, render_kernel_view


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = CARAFEDownsample(4)
        self.up = CARAFEUpsample(4, compressed_channels=8)

    def forward(self, x):
        return self.up(self.down(x))


def test_capture_records_every_layer_with_its_geometry():
    model = Tiny()
    with capture_kernels(model) as caps:
        model(torch.randn(2, 4, 12, 10))
    assert [(c.name, c.upsample, c.input_size, c.output_size) for c in caps] == [
        ("down", False, (12, 10), (6, 5)), ("up", True, (6, 5), (12, 10))]
    assert caps[0].kernels.shape == (25, 6, 5) and torch.allclose(caps[0].kernels.sum(0), torch.ones(6, 5))
    with torch.no_grad():  # hooks are removed after the block
        model(torch.randn(1, 4, 12, 10))
    assert len(caps) == 2


def one_hot_capture(upsample: bool, tap: int) -> KernelCapture:
    kernels = torch.zeros(9, 8, 8)
    kernels[tap] = 1.0
    return KernelCapture("x", upsample, 2, 3, 1, (4, 4) if upsample else (16, 16), kernels)


@pytest.mark.parametrize("upsample", [True, False])
def test_taps_follow_the_carafe_source_mapping(upsample):
    cap = one_hot_capture(upsample, tap=8)  # bottom-right tap (+1, +1)
    taps = cap.taps(5, 2)
    centre = (2, 1) if upsample else (10, 4)  # floor(y / s) for CARAFE, s * y for CARAFE++ down
    assert len(taps) == 9 and max(taps, key=lambda t: t[2])[:2] == (centre[0] + 1, centre[1] + 1)
    assert len(cap.taps(0, 0)) == 4  # taps outside the map are left out


def test_render_shades_the_heaviest_tap():
    cap = one_hot_capture(True, tap=8)
    image = np.full((64, 64, 3), 128, np.uint8)
    view = render_kernel_view(image, cap, points=[(5, 2)], panel=100)
    assert view.shape == (100, 100, 3)
    red = (view[..., 0].astype(int) - view[..., 2]) > 60
    assert 0.02 < red.mean() < 0.5  # one of nine cells, in a window of up to 7 x 7 cells
    two = render_kernel_view(image, cap, panel=50)
    assert two.shape == (50, 4 * 50 + 3 * 2, 3)
    assert [c.name for c in pick_layers([cap] * 10, 3)] == ["x"] * 3 and pick_layers([cap], 0) == []
