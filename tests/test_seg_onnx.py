"""ONNX export with dynamic height and width; ONNX Runtime must reproduce PyTorch within 1e-4.

Exporting traces carafe_op's pure-tensor reference (k*k taps per layer). The small tests
cover CARAFE++ down/up with the crop and the PPM's export form of adaptive pooling; the
whole segmentor (17 CARAFE++ layers with 5x5 kernels) is checked at two sizes other than the traced one.
"""

import numpy as np
import pytest
import torch
from torch import nn

from carafe_op import CARAFEDownsample
from seg import build_segmentor
from seg.export_onnx import export_onnx
from seg.upernet.ppm import PPM, sliced_adaptive_avg_pool2d
from seg.upernet.resample import CARAFEResize

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is needed to run the exported graph")


class DownUp(nn.Module):
    """CARAFE++ down then up, cropped back to the (odd) input size: both export paths and the crop."""

    def __init__(self) -> None:
        super().__init__()
        self.down = CARAFEDownsample(4, kernel_size=1, encoder_kernel=3, compressor_norm=True)
        self.up = CARAFEResize(4, kernel_size=1, encoder_kernel=1, compressed_channels=8)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(images), images.shape[-2:])


def _round_trip(model: nn.Module, path, sizes, channels: int, sample_size) -> None:
    model.eval()
    export_onnx(model, path, sample_size=sample_size, channels=channels)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, size in sizes:
        images = torch.randn(batch, channels, *size)
        with torch.no_grad():
            expected = model(images).numpy()
        (got,) = session.run(None, {"images": images.numpy()})
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_carafe_layers_export_with_dynamic_size(tmp_path):
    _round_trip(DownUp(), tmp_path / "down_up.onnx", [(1, (13, 9)), (3, (20, 31))], channels=4, sample_size=(11, 7))


def test_export_form_of_adaptive_pooling_matches_pytorch():
    for height, width in ((1, 1), (5, 7), (13, 6), (16, 16)):
        x = torch.randn(2, 3, height, width, dtype=torch.float64)
        for scale in (1, 2, 3, 6):
            expected = nn.functional.adaptive_avg_pool2d(x, scale)
            torch.testing.assert_close(sliced_adaptive_avg_pool2d(x, scale), expected)


def test_pyramid_pooling_exports_with_dynamic_size(tmp_path):
    """Adaptive pooling to 2, 3, 6 bins of a map of any size (non-divisible sizes included)."""
    _round_trip(PPM(4, 4), tmp_path / "ppm.onnx", [(1, (13, 9)), (2, (6, 5))], channels=4, sample_size=(11, 7))


def test_segmentor_exports_with_dynamic_size(tmp_path):
    model = build_segmentor("resnet18", num_classes=3, channels=8)
    _round_trip(model, tmp_path / "seg.onnx", [(1, (97, 75)), (2, (64, 81))], channels=3, sample_size=(65, 49))


def test_low_opset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(DownUp(), tmp_path / "x.onnx", opset=16, channels=4)
