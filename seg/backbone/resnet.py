"""ResNet-18/50/101 (timm) as a four-level encoder, optionally with CARAFE++ downsampling.

With ``resampler="carafe"`` the seven (Bottleneck) downsampling points of the paper (§4.1,
SPEC §2) become CARAFE++: the stem's max pool, and in the first block of Res-3, Res-4 and
Res-5 both the main path (CARAFE++ before the block's first convolution; the strided
convolution then runs at stride 1) and the shortcut (CARAFE++ before the 1x1 projection).
Basic blocks get the same treatment. The kernel predictors use BN + ReLU after their
channel compressor (paper §5.1).

The modified convolutions keep timm's parameter names, so an ImageNet checkpoint of the
plain ResNet loads into either variant; only the CARAFE++ modules are new.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from carafe_op import CARAFEDownsample

BACKBONES = ("resnet18", "resnet50", "resnet101")
BACKBONE_RESAMPLERS = ("carafe", "baseline")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]


def carafe_downsampler(channels: int) -> CARAFEDownsample:
    """The backbone's CARAFE++ x2 downsampler (defaults of SPEC §1, BN + ReLU compressor)."""
    return CARAFEDownsample(channels, scale_factor=2, compressor_norm=True)


class ResampledConv2d(nn.Conv2d):
    """A stride-1 convolution that first downsamples its input with ``resample``.

    Subclassing ``nn.Conv2d`` keeps the convolution's own parameter names (``weight``,
    ``bias``), which is what lets checkpoints of the strided original load unchanged.
    """

    def __init__(self, conv: nn.Conv2d, resample: nn.Module) -> None:
        super().__init__(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=1, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
        )
        self.load_state_dict(conv.state_dict())
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.resample(x))


def _unstride(conv: nn.Conv2d) -> None:
    if conv.stride != (2, 2):
        raise ValueError(f"expected a stride-2 convolution to replace, got stride {conv.stride}")
    conv.stride = (1, 1)


def inject_carafe_block(block: nn.Module) -> None:
    """CARAFE++ on both paths of a downsampling residual block (timm Bottleneck or BasicBlock)."""
    strided = block.conv2 if hasattr(block, "conv3") else block.conv1  # where timm puts the stride
    _unstride(strided)
    block.conv1 = ResampledConv2d(block.conv1, carafe_downsampler(block.conv1.in_channels))
    projection = block.downsample[0]
    _unstride(projection)
    block.downsample[0] = ResampledConv2d(projection, carafe_downsampler(projection.in_channels))


class ResNetEncoder(nn.Module):
    """Multi-scale ResNet features at strides 4, 8, 16, 32 (smp-style encoder contract).

    Attributes:
        out_channels: channels of the four returned feature maps.
        output_stride: total stride of the last map (32); inputs must be at least this large.
    """

    output_stride = 32

    def __init__(self, name: str = "resnet50", resampler: str = "baseline") -> None:
        super().__init__()
        self.name = check_choice("backbone", name, BACKBONES)
        self.resampler = check_choice("backbone_resampler", resampler, BACKBONE_RESAMPLERS)
        self.body = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
        self.out_channels: tuple[int, ...] = tuple(self.body.feature_info.channels())
        if resampler == "carafe":
            self.body.maxpool = carafe_downsampler(self.body.bn1.num_features)
            for stage in (self.body.layer2, self.body.layer3, self.body.layer4):
                inject_carafe_block(stage[0])

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.body(images)
