"""The segmentor: ResNet encoder + UperNet decoder + classifier, each resampling point switchable.

``build_segmentor`` is the entry point; every row of the paper's Table IX is one choice of
``backbone_resampler``, ``ppm``, ``fpn`` and ``fuse``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from carafe_op import CARAFEDownsample, CARAFEUpsample

from .backbone.resnet import BACKBONES, ResNetEncoder, check_choice
from .upernet.decoder import UperNetDecoder
from .upernet.fpn import FPN_MODES
from .upernet.fuse import FUSE_MODES
from .upernet.head import Classifier, FCNAuxHead
from .upernet.ppm import PPM_MODES
from .weights import LoadReport, load_backbone_weights


class Segmentor(nn.Module):
    """``forward(images)`` returns logits (N, num_classes, H, W) at the input size.

    With an auxiliary head, in training mode it returns ``{"out": logits, "aux": aux_logits}``
    (both at the input size; weigh the aux loss by ``seg.upernet.head.AUX_LOSS_WEIGHT`` = 0.4);
    in eval mode the plain logits tensor. Images must be (N, 3, H, W) with H, W >= 32.
    """

    def __init__(self, backbone: ResNetEncoder, decoder: UperNetDecoder, classifier: Classifier,
                 aux_head: FCNAuxHead | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.classifier = classifier
        self.aux_head = aux_head
        self.load_report: LoadReport | None = None

    def check_images(self, images: torch.Tensor) -> None:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be a (N, 3, H, W) tensor, got {shape}")
        stride = self.backbone.output_stride
        if images.shape[-2] < stride or images.shape[-1] < stride:
            raise ValueError(
                f"images must be at least {stride}x{stride} (the network's total stride), "
                f"got {images.shape[-2]}x{images.shape[-1]}"
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        self.check_images(images)
        size = images.shape[-2:]
        features = self.backbone(images)
        logits = self.classifier(self.decoder(features), size)
        if self.aux_head is not None and self.training:
            return {"out": logits, "aux": self.aux_head(features[-2], size)}
        return logits


def build_segmentor(
    backbone: str = "resnet50",
    num_classes: int = 150,
    channels: int = 512,
    ppm: str = "carafe",
    fpn: str = "carafe",
    fuse: str = "carafe",
    backbone_resampler: str = "carafe",
    aux_head: bool = False,
    pretrained: str | Path | None = None,
) -> Segmentor:
    """UperNet with CARAFE++ at each switched-on resampling point (defaults: all four, paper §4.2).

    Args:
        backbone: ``"resnet18"``, ``"resnet50"`` or ``"resnet101"``.
        num_classes: classifier outputs (150 for ADE20K).
        channels: decoder width (512 in UperNet; smaller for quick experiments).
        ppm: ``"carafe"`` (bilinear to half size, then CARAFE++ x2) or ``"bilinear"``.
        fpn: ``"carafe"``, ``"bilinear"`` (UperNet) or ``"nearest"`` (detection FPN).
        fuse: ``"carafe"`` (sequential P5->P2) or ``"bilinear"`` (UperNet).
        backbone_resampler: ``"carafe"`` (7 CARAFE++ in R-50) or ``"baseline"`` (max pool, strided convs).
        aux_head: add mmseg's auxiliary FCN head on stage 4 (used in training only).
        pretrained: ``None``, ``"timm"`` (ImageNet weights from timm's hub) or a backbone weights
            file; the load report is kept in ``model.load_report``.
    """
    check_choice("backbone", backbone, BACKBONES)
    check_choice("ppm", ppm, PPM_MODES)
    check_choice("fpn", fpn, FPN_MODES)
    check_choice("fuse", fuse, FUSE_MODES)
    for name, value in (("num_classes", num_classes), ("channels", channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    encoder = ResNetEncoder(backbone, backbone_resampler)
    decoder = UperNetDecoder(encoder.out_channels, channels, ppm=ppm, fpn=fpn, fuse=fuse)
    aux = FCNAuxHead(encoder.out_channels[-2], max(channels // 2, 1), num_classes) if aux_head else None
    model = Segmentor(encoder, decoder, Classifier(channels, num_classes), aux)
    if pretrained is not None:
        model.load_report = load_backbone_weights(encoder, pretrained)
    return model


def count_carafe_modules(model: Segmentor) -> dict[str, int]:
    """Number of CARAFE / CARAFE++ layers per component: backbone, ppm, fpn, fuse."""
    components = {"backbone": model.backbone, "ppm": model.decoder.ppm, "fpn": model.decoder.fpn,
                  "fuse": model.decoder.fuse}
    return {
        name: sum(isinstance(m, (CARAFEUpsample, CARAFEDownsample)) for m in module.modules())
        for name, module in components.items()
    }
