"""Backbone weights from a local file: values land where they should, the report is exact."""

import pytest
import timm
import torch

from seg import build_segmentor, load_state, read_state_dict


@pytest.fixture(scope="module")
def imagenet_like_file(tmp_path_factory):
    """A timm ResNet-18 checkpoint (random weights, nothing downloaded), classifier included."""
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save({"state_dict": state}, path)
    return path, state


def test_carafe_backbone_reports_new_carafe_keys_and_unused_classifier(imagenet_like_file):
    path, state = imagenet_like_file
    model = build_segmentor("resnet18", num_classes=3, channels=16, pretrained=path)
    body = model.backbone.body
    expected_missing = {k for k in body.state_dict() if ".resample." in k or k.startswith("maxpool.")}
    assert len(expected_missing) == 7 * 8  # per CARAFE++: compressor conv, its BN (5 tensors), encoder weight and bias
    assert set(model.load_report.missing) == expected_missing
    assert set(model.load_report.unexpected) == {"fc.weight", "fc.bias"}
    # Loaded values sit in the right places, including the convolutions that lost their stride.
    own = body.state_dict()
    for key in ("conv1.weight", "layer2.0.conv1.weight", "layer3.0.downsample.0.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(own[key], state[key])


def test_baseline_backbone_loads_everything_but_the_classifier(imagenet_like_file):
    path, _ = imagenet_like_file
    model = build_segmentor("resnet18", channels=16, backbone_resampler="baseline", pretrained=path)
    assert model.load_report.missing == ()
    assert set(model.load_report.unexpected) == {"fc.weight", "fc.bias"}
    assert "2 unexpected" in str(model.load_report)


def test_whole_model_round_trip_is_strict(tmp_path):
    model = build_segmentor("resnet18", num_classes=3, channels=16)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    other = build_segmentor("resnet18", num_classes=3, channels=16)
    report = load_state(other, read_state_dict(path), strict=True)
    assert report.missing == report.unexpected == ()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True))
    baseline = build_segmentor("resnet18", num_classes=3, channels=16, backbone_resampler="baseline")
    with pytest.raises(ValueError, match="unexpected"):
        load_state(baseline, read_state_dict(path), strict=True)


def test_missing_file_and_wrong_shapes_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_segmentor("resnet18", channels=16, pretrained=tmp_path / "nope.pth")
    resnet50 = tmp_path / "resnet50.pth"
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), resnet50)
    with pytest.raises(ValueError, match="layer1.0.conv1.weight"):
        build_segmentor("resnet18", channels=16, pretrained=resnet50)
    not_weights = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(ValueError, match="state dict"):
        read_state_dict(not_weights)
