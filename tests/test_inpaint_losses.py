"""Reconstruction, adversarial, TV and VGG losses; the PatchGAN discriminator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn.utils import parametrize

from inpaint import InpaintingLoss, LossWeights, build_discriminator
from inpaint.composite import composite
from inpaint.losses import AdversarialLoss, VGGFeatures, hole_l1, mask_aware_target, total_variation, valid_l1


def sample(h: int = 32, w: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, h, w, generator=generator) * 2 - 1
    mask = torch.zeros(2, 1, h, w)
    mask[..., 8:20, 10:24] = 1
    return target, mask


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VGG-16 feature state dict, saved like torchvision's (``features.N.*``)."""
    from torchvision.models import vgg16

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg16(weights=None).features[:17].state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save({f"features.{k}": 0.1 * torch.randn(shape, generator=generator) for k, shape in shapes.items()}, path)
    return path


def test_masked_l1_terms_see_only_their_region() -> None:
    target, mask = sample()
    assert hole_l1(target, target, mask) == 0 and valid_l1(target, target, mask) == 0
    wrong_in_holes = torch.where(mask.bool(), -target, target)
    assert hole_l1(wrong_in_holes, target, mask) > 0 and valid_l1(wrong_in_holes, target, mask) == 0
    wrong_outside = torch.where(mask.bool(), target, -target)
    assert hole_l1(wrong_outside, target, mask) == 0 and valid_l1(wrong_outside, target, mask) > 0


def test_total_variation_counts_pairs_touching_holes() -> None:
    target, mask = sample()
    assert total_variation(torch.full_like(target, 0.3), mask) == 0
    assert total_variation(target, mask) > 0
    noisy_outside = torch.where(mask.bool(), torch.zeros_like(target), target)
    noisy_outside[..., 7:21, 9:25] = 0  # pixels next to the hole are flat too
    assert total_variation(noisy_outside, mask) == 0


def test_generator_loss_zero_on_perfect_prediction_and_positive_otherwise(vgg_file: Path) -> None:
    target, mask = sample()
    weights = LossWeights(hole=6, valid=1, adversarial=0, tv=0, perceptual=0.05, style=120)
    loss = InpaintingLoss(weights, vgg_weights=vgg_file)
    perfect = loss.generator_loss(target, target, target, mask)
    assert set(perfect) == {"hole", "valid", "perceptual", "style", "total"}
    assert all(value.item() == 0 for value in perfect.values())
    prediction = torch.where(mask.bool(), torch.zeros_like(target), target)
    wrong = loss.generator_loss(prediction, composite(target, prediction, mask), target, mask)
    assert all(wrong[name] > 0 for name in ("hole", "perceptual", "style", "total"))
    assert wrong["valid"] == 0


def test_generator_loss_adds_adversarial_and_tv_terms() -> None:
    target, mask = sample()
    loss = InpaintingLoss(LossWeights(adversarial=0.1, tv=0.1), adversarial="lsgan")
    terms = loss.generator_loss(target, target, target, mask, fake_logits=torch.zeros(2, 1, 2, 2))
    assert terms["adversarial"] == 1 and terms["tv"] > 0
    torch.testing.assert_close(terms["total"], 0.1 * terms["adversarial"] + 0.1 * terms["tv"])


def test_vgg_features_load_only_from_a_local_file(vgg_file: Path, tmp_path: Path) -> None:
    features = VGGFeatures(vgg_file)
    assert not any(p.requires_grad for p in features.parameters())
    assert [f.shape[1] for f in features(torch.zeros(1, 3, 32, 32))] == [64, 128, 256]
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        VGGFeatures(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="vgg_weights"):
        InpaintingLoss(LossWeights(perceptual=1.0))
    truncated = tmp_path / "truncated.pth"
    state = torch.load(vgg_file, weights_only=True)
    torch.save({k: v for k, v in state.items() if k != "features.14.weight"}, truncated)
    with pytest.raises(ValueError, match="not a torchvision VGG-16 state dict"):
        VGGFeatures(truncated)


@pytest.mark.parametrize("mode", ["hinge", "lsgan", "mask_aware"])
def test_adversarial_losses_vanish_at_their_optimum(mode: str) -> None:
    _, mask = sample()
    loss = AdversarialLoss(mode, sigma=0)
    target = mask_aware_target(mask, (4, 4), sigma=0)
    real = {"hinge": 1.5, "lsgan": 1.0, "mask_aware": 0.0}[mode] * torch.ones(2, 1, 4, 4)
    fake = {"hinge": -1.5 * torch.ones(2, 1, 4, 4), "lsgan": torch.zeros(2, 1, 4, 4), "mask_aware": target}[mode]
    assert loss.discriminator(real, fake, mask) == 0
    assert loss.discriminator(fake, real, mask) > 0
    fooled = torch.ones(2, 1, 4, 4)
    if mode == "hinge":
        assert loss.generator(fooled, mask) < loss.generator(fake, mask)
    else:
        assert loss.generator(fooled, mask) == 0 and loss.generator(fake, mask) > 0


def test_mask_aware_generator_loss_ignores_patches_without_holes() -> None:
    _, mask = sample()
    loss = AdversarialLoss("mask_aware", sigma=0)
    target = mask_aware_target(mask, (4, 4), sigma=0)
    assert target.min() == 0 and target.max() == 1
    logits = torch.randn(2, 1, 4, 4)
    changed = torch.where(target > 0, logits, logits + 5)
    assert loss.generator(logits, mask) == loss.generator(changed, mask)
    blurred = mask_aware_target(mask, (4, 4))
    assert blurred.min() >= 0 and blurred.max() <= 1 and (blurred > 0).sum() > (target > 0).sum()
    with pytest.raises(ValueError, match="adversarial mode"):
        AdversarialLoss("wgan")


def test_discriminator_patches_spectral_norm_and_gradients() -> None:
    torch.manual_seed(0)
    disc = build_discriminator(width=0.25)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(parametrize.is_parametrized(c, "weight") for c in convs)
    target, mask = sample(64, 64)
    logits = disc(target, mask)
    assert logits.shape == (2, 1, 6, 6)
    logits.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in disc.parameters())
    assert build_discriminator(width=0.25, with_mask=False)(target).shape == (2, 1, 6, 6)
    with pytest.raises(ValueError, match="mask is required"):
        disc(target)
    with pytest.raises(ValueError, match="width"):
        build_discriminator(width=-1)


def test_one_adversarial_training_step() -> None:
    """Generator, composite, discriminator and both losses fit together and update the weights."""
    from inpaint import Inpainter, build_generator

    torch.manual_seed(0)
    model = Inpainter(build_generator("pconv_unet", carafe=True, width=1 / 16, depth=3))
    disc = build_discriminator(width=0.125)
    loss = InpaintingLoss(LossWeights(adversarial=0.1, tv=0.1), adversarial="mask_aware")
    target, mask = sample()
    result = model(target, mask)
    d_loss = loss.discriminator_loss(disc(target, mask), disc(result.composited.detach(), mask), mask)
    d_loss.backward()
    assert all(p.grad is not None for p in disc.parameters())
    disc.zero_grad()
    terms = loss.generator_loss(result.prediction, result.composited, target, mask, disc(result.composited, mask))
    assert set(terms) == {"hole", "valid", "tv", "adversarial", "total"}
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    terms["total"].backward()
    optimizer.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
