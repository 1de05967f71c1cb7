"""CARAFE / CARAFE++ layers: kernel prediction (compressor, content encoder, normaliser) plus
reassembly.

Initialisation follows mmcv's CARAFEPack: Xavier-uniform compressor, N(0, 0.001) content
encoder, zero biases. With near-zero encoder outputs the softmax starts close to uniform,
so a fresh layer behaves like a k x k box filter and training moves it from there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_int_arg, check_kernel_size
from .functional import carafe, carafe_down, carafe_masked


class KernelPredictor(nn.Module):
    """Predicts normalised reassembly kernels (N, G*k*k, H_out, W_out) from features.

    ``upsample=True``: the encoder emits s*s*G*k*k channels at input resolution and a pixel
    shuffle spreads them to (s*H, s*W). ``upsample=False``: the encoder runs with stride s
    and padding ``encoder_kernel // 2``, so it centres on (s*y, s*x) like the reassembly.
    ``compressor_norm`` adds BN + ReLU after the 1x1 compressor (the backbone setting).
    """

    def __init__(
        self,
        channels: int,
        scale_factor: int,
        compressed_channels: int,
        kernel_size: int,
        encoder_kernel: int,
        groups: int,
        upsample: bool,
        compressor_norm: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = check_kernel_size(kernel_size)
        self.scale_factor = check_int_arg("scale_factor", scale_factor, 1)
        self.groups = check_int_arg("groups", groups, 1)
        encoder_kernel = check_int_arg("encoder_kernel", encoder_kernel, 1)
        if encoder_kernel % 2 == 0:
            raise ValueError(f"encoder_kernel must be odd, got {encoder_kernel}")
        check_int_arg("channels", channels, 1)
        check_int_arg("compressed_channels", compressed_channels, 1)
        self.upsample = upsample
        taps = self.groups * self.kernel_size**2
        compressor: list[nn.Module] = [nn.Conv2d(channels, compressed_channels, 1, bias=not compressor_norm)]
        if compressor_norm:
            compressor += [nn.BatchNorm2d(compressed_channels), nn.ReLU(inplace=True)]
        self.compressor = nn.Sequential(*compressor)
        self.encoder = nn.Conv2d(
            compressed_channels,
            taps * self.scale_factor**2 if upsample else taps,
            encoder_kernel,
            stride=1 if upsample else self.scale_factor,
            padding=encoder_kernel // 2,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.compressor[0].weight)
        if self.compressor[0].bias is not None:
            nn.init.zeros_(self.compressor[0].bias)
        nn.init.normal_(self.encoder.weight, std=0.001)
        nn.init.zeros_(self.encoder.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernels = self.encoder(self.compressor(x))
        if self.upsample and self.scale_factor > 1:
            kernels = F.pixel_shuffle(kernels, self.scale_factor)
        n, _, h, w = kernels.shape
        kernels = kernels.view(n, self.groups, self.kernel_size**2, h, w).softmax(dim=2)
        return kernels.view(n, -1, h, w)


class CARAFEUpsample(nn.Module):
    """Content-aware upsampling by ``scale_factor`` (CARAFE), channels preserved.

    ``forward(x, output_size=(h, w))`` crops the s*H x s*W result to a skip connection's
    size, which must lie in (s*H - s, s*H] per axis (e.g. x2 of a 38-pixel map to 75).
    """

    def __init__(
        self,
        channels: int,
        scale_factor: int = 2,
        compressed_channels: int = 64,
        kernel_size: int = 5,
        encoder_kernel: int = 3,
        groups: int = 1,
        compressor_norm: bool = False,
    ) -> None:
        super().__init__()
        self.predictor = KernelPredictor(
            channels, scale_factor, compressed_channels, kernel_size, encoder_kernel, groups,
            upsample=True, compressor_norm=compressor_norm,
        )
        self.channels = channels

    def _crop(self, y: torch.Tensor, in_size: tuple[int, int], output_size: tuple[int, int] | None) -> torch.Tensor:
        if output_size is None:
            return y
        s = self.predictor.scale_factor
        out_h, out_w = output_size
        for axis, (target, size) in enumerate(zip((out_h, out_w), in_size, strict=True)):
            if isinstance(target, int) and isinstance(size, int) and not s * size - s < target <= s * size:
                raise ValueError(
                    f"output_size[{axis}]={target} cannot be reached by x{s} upsampling of size {size}: "
                    f"expected a value in ({s * size - s}, {s * size}]"
                )
        # Plain slicing keeps symbolic sizes symbolic under torch.export (dynamic ONNX shapes).
        return y[:, :, :out_h, :out_w]

    def forward(
        self, x: torch.Tensor, output_size: tuple[int, int] | None = None, return_kernels: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        p = self.predictor
        kernels = p(x).to(x.dtype)
        y = self._crop(carafe(x, kernels, p.kernel_size, p.groups, p.scale_factor), x.shape[-2:], output_size)
        return (y, kernels) if return_kernels else y

    def forward_masked(
        self, x: torch.Tensor, validity: torch.Tensor, output_size: tuple[int, int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask-aware upsampling (``carafe_masked``); returns ``(output, new_validity)``."""
        p = self.predictor
        kernels = p(x * validity).to(x.dtype)
        y, new_validity = carafe_masked(x, validity, kernels, p.kernel_size, p.groups, p.scale_factor, "up")
        return self._crop(y, x.shape[-2:], output_size), self._crop(new_validity, x.shape[-2:], output_size)


class CARAFEDownsample(nn.Module):
    """Content-aware downsampling by ``scale_factor`` (CARAFE++) to (ceil(H/s), ceil(W/s))."""

    def __init__(
        self,
        channels: int,
        scale_factor: int = 2,
        compressed_channels: int = 16,
        kernel_size: int = 5,
        encoder_kernel: int = 3,
        groups: int = 1,
        compressor_norm: bool = False,
    ) -> None:
        super().__init__()
        self.predictor = KernelPredictor(
            channels, scale_factor, compressed_channels, kernel_size, encoder_kernel, groups,
            upsample=False, compressor_norm=compressor_norm,
        )
        self.channels = channels

    def forward(
        self, x: torch.Tensor, return_kernels: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        p = self.predictor
        kernels = p(x).to(x.dtype)
        y = carafe_down(x, kernels, p.kernel_size, p.groups, p.scale_factor)
        return (y, kernels) if return_kernels else y

    def forward_masked(self, x: torch.Tensor, validity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask-aware downsampling (``carafe_masked``); returns ``(output, new_validity)``."""
        p = self.predictor
        kernels = p(x * validity).to(x.dtype)
        return carafe_masked(x, validity, kernels, p.kernel_size, p.groups, p.scale_factor, "down")
