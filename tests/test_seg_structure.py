"""Where CARAFE++ goes (paper §4, SPEC §2), that it trains, and that the baseline is plain UperNet."""

import pytest
import segmentation_models_pytorch as smp
import timm
import torch
from torch import nn

from carafe_op import CARAFEDownsample, CARAFEUpsample
from seg import build_segmentor, count_carafe_modules

SWITCHES_OFF = {"backbone_resampler": "baseline", "ppm": "bilinear", "fpn": "bilinear", "fuse": "bilinear"}


@pytest.fixture(scope="module")
def resnet50_all_carafe():
    return build_segmentor("resnet50", num_classes=150, channels=64)


def test_resnet50_counts_per_component(resnet50_all_carafe):
    assert count_carafe_modules(resnet50_all_carafe) == {"backbone": 7, "ppm": 4, "fpn": 3, "fuse": 3}


@pytest.mark.parametrize(
    "switch,value,component,count",
    [("backbone_resampler", "carafe", "backbone", 7), ("ppm", "carafe", "ppm", 4),
     ("fpn", "carafe", "fpn", 3), ("fuse", "carafe", "fuse", 3), ("fpn", "nearest", "fpn", 0)],
)
def test_each_switch_only_touches_its_component(switch, value, component, count):
    model = build_segmentor("resnet18", num_classes=3, channels=16, **{**SWITCHES_OFF, switch: value})
    expected = {"backbone": 0, "ppm": 0, "fpn": 0, "fuse": 0, component: count}
    assert count_carafe_modules(model) == expected


def test_backbone_placement(resnet50_all_carafe):
    body = resnet50_all_carafe.backbone.body
    assert isinstance(body.maxpool, CARAFEDownsample) and body.maxpool.channels == 64
    for stage, in_channels in ((body.layer2, 256), (body.layer3, 512), (body.layer4, 1024)):
        first = stage[0]
        # Main path: CARAFE++ before the first (1x1) conv, the 3x3 conv no longer strided.
        assert isinstance(first.conv1.resample, CARAFEDownsample) and first.conv1.resample.channels == in_channels
        assert first.conv1.stride == first.conv2.stride == (1, 1)
        # Shortcut: CARAFE++ then the 1x1 projection at stride 1.
        assert isinstance(first.downsample[0].resample, CARAFEDownsample)
        assert first.downsample[0].stride == (1, 1)
        assert first.conv1.resample is not first.downsample[0].resample
        # BN + ReLU after the channel compressor in the backbone.
        assert isinstance(first.conv1.resample.predictor.compressor[1], nn.BatchNorm2d)
        for block in list(stage)[1:]:
            assert not any(isinstance(m, CARAFEDownsample) for m in block.modules())
    assert not any(isinstance(m, CARAFEDownsample) for m in body.layer1.modules())
    assert not any(isinstance(m, nn.MaxPool2d) for m in body.modules())


def test_basic_block_backbone_gets_the_same_treatment():
    body = build_segmentor("resnet18", channels=16, **{**SWITCHES_OFF, "backbone_resampler": "carafe"}).backbone.body
    for stage in (body.layer2, body.layer3, body.layer4):
        assert isinstance(stage[0].conv1.resample, CARAFEDownsample)  # the 3x3 conv that was strided
        assert stage[0].conv1.stride == (1, 1) and stage[0].conv1.kernel_size == (3, 3)
        assert isinstance(stage[0].downsample[0].resample, CARAFEDownsample)


def test_decoder_placement_and_widths(resnet50_all_carafe):
    decoder = resnet50_all_carafe.decoder
    assert [branch.pool.output_size for branch in decoder.ppm.branches] == [1, 2, 3, 6]
    assert all(isinstance(b.carafe, CARAFEUpsample) and b.carafe.channels == 64 for b in decoder.ppm.branches)
    assert all(isinstance(u, CARAFEUpsample) and u.channels == 64 for u in decoder.fpn.upsamplers)
    # Sequential FUSE: P5 (C) -> [P4, P5] (2C) -> [P3, P4, P5] (3C).
    assert [u.channels for u in decoder.fuse.upsamplers] == [64, 128, 192]


def test_sequential_fuse_with_interpolation_equals_direct_resize_order():
    """The concat order of the CARAFE++ FUSE is the UperNet order [P2, P3, P4, P5]."""
    model = build_segmentor("resnet18", num_classes=3, channels=4, **{**SWITCHES_OFF, "fuse": "carafe"}).eval()
    fuse = model.decoder.fuse
    pyramid = [torch.randn(1, 4, s, s) for s in (16, 8, 4, 2)]
    concat = {}
    fuse.bottleneck.register_forward_hook(lambda module, args, out: concat.update(x=args[0]))
    with torch.no_grad():
        fuse(pyramid)
    assert concat["x"].shape == (1, 16, 16, 16)
    assert torch.equal(concat["x"][:, :4], pyramid[0])


def test_gradients_reach_every_carafe_parameter():
    model = build_segmentor("resnet18", num_classes=3, channels=16, aux_head=True).train()
    # timm zero-initialises each residual branch's last BN, which blocks the main path's gradient
    # until the first update; pretrained weights (and any trained model) have it non-zero.
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
    out = model(torch.randn(2, 3, 65, 67))
    target = torch.randint(0, 3, (2, 65, 67))
    loss = nn.functional.cross_entropy(out["out"], target) + 0.4 * nn.functional.cross_entropy(out["aux"], target)
    loss.backward()
    carafe_layers = [m for m in model.modules() if isinstance(m, (CARAFEUpsample, CARAFEDownsample))]
    assert len(carafe_layers) == 17
    for layer in carafe_layers:
        for name, parameter in layer.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def _conv_layout(module: nn.Module) -> list[tuple]:
    return sorted((m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in module.modules()
                  if isinstance(m, nn.Conv2d))


def test_baseline_is_plain_upernet():
    model = build_segmentor("resnet18", num_classes=5, channels=32, **SWITCHES_OFF)
    assert count_carafe_modules(model) == {"backbone": 0, "ppm": 0, "fpn": 0, "fuse": 0}
    # Backbone: timm's ResNet-18 minus its classifier, parameter for parameter.
    reference = timm.create_model("resnet18", pretrained=False).state_dict()
    ours = model.backbone.body.state_dict()
    expected = {k: v.shape for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours.items()} == expected
    # Decoder + classifier: the same convolutions as smp's UPerNet (PPM 1,2,3,6; FPN; fusion; 1x1 classifier).
    plain = smp.UPerNet("resnet18", encoder_weights=None, decoder_channels=32, classes=5)
    assert _conv_layout(nn.ModuleList([model.decoder, model.classifier])) == _conv_layout(
        nn.ModuleList([plain.decoder, plain.segmentation_head])
    )
