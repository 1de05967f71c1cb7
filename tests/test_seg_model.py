"""The segmentor end to end: output shapes for every switch combination, aux head, bad input."""

import itertools

import pytest
import torch

from seg import Segmentor, build_segmentor
from seg.backbone import ResNetEncoder
from seg.upernet import AUX_LOSS_WEIGHT, Classifier, UperNetDecoder

COMBOS = list(itertools.product(["carafe", "baseline"], ["carafe", "bilinear"],
                                ["carafe", "bilinear", "nearest"], ["carafe", "bilinear"]))


def tiny(**switches):
    return build_segmentor("resnet18", num_classes=3, channels=16, **switches)


@pytest.fixture(scope="module")
def encoders():
    """Both ResNet-18 variants, built once and shared (the combinations differ in the decoder)."""
    return {resampler: ResNetEncoder("resnet18", resampler).eval() for resampler in ("carafe", "baseline")}


@pytest.mark.parametrize("backbone_resampler,ppm,fpn,fuse", COMBOS)
def test_every_switch_combination_gives_logits_at_the_input_size(encoders, backbone_resampler, ppm, fpn, fuse):
    encoder = encoders[backbone_resampler]
    decoder = UperNetDecoder(encoder.out_channels, 16, ppm=ppm, fpn=fpn, fuse=fuse)
    model = Segmentor(encoder, decoder, Classifier(16, 3)).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 65, 97))
    assert logits.shape == (1, 3, 65, 97)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("size", [(33, 33), (75, 50), (96, 64)])
def test_odd_and_non_multiple_of_32_sizes_all_carafe(size):
    model = tiny().eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, *size)).shape == (2, 3, *size)


def test_aux_head_returns_both_logits_in_training_only():
    model = tiny(aux_head=True).train()
    out = model(torch.randn(2, 3, 67, 45))
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, 3, 67, 45)
    assert not torch.equal(out["out"], out["aux"])
    assert AUX_LOSS_WEIGHT == 0.4
    # The aux head reads stage 4 (stride 16): 256 channels in ResNet-18.
    assert model.aux_head.conv[0].in_channels == model.backbone.out_channels[2] == 256
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 67, 45)).shape == (1, 3, 67, 45)


@pytest.mark.parametrize(
    "kwargs,names",
    [
        ({"backbone": "resnet34"}, ["backbone", "'resnet18'", "'resnet50'", "'resnet101'"]),
        ({"ppm": "nearest"}, ["ppm", "'carafe'", "'bilinear'"]),
        ({"fpn": "deconv"}, ["fpn", "'carafe'", "'bilinear'", "'nearest'"]),
        ({"fuse": "nearest"}, ["fuse", "'carafe'", "'bilinear'"]),
        ({"backbone_resampler": "maxpool"}, ["backbone_resampler", "'carafe'", "'baseline'"]),
        ({"channels": 0}, ["channels"]),
        ({"num_classes": 2.5}, ["num_classes"]),
    ],
)
def test_bad_configuration_names_the_argument_and_valid_choices(kwargs, names):
    with pytest.raises(ValueError) as error:
        build_segmentor(**{"backbone": "resnet18", "channels": 16, **kwargs})
    for name in names:
        assert name in str(error.value)


@pytest.fixture(scope="module")
def eval_model():
    return tiny().eval()


@pytest.mark.parametrize(
    "images,message",
    [
        (torch.randn(1, 1, 64, 64), "(N, 3, H, W)"),
        (torch.randn(1, 4, 64, 64), "(N, 3, H, W)"),
        (torch.randn(3, 64, 64), "(N, 3, H, W)"),
        (torch.randn(1, 3, 31, 64), "at least 32x32"),
        (torch.randn(1, 3, 64, 20), "at least 32x32"),
    ],
)
def test_bad_input_is_a_clear_error(eval_model, images, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        eval_model(images)


def test_non_tensor_input_is_a_clear_error(eval_model):
    with pytest.raises(ValueError, match="tensor"):
        eval_model([[1.0]])
