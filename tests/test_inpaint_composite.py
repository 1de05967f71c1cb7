"""Mask checks, the generator input and the output composition."""

from __future__ import annotations

import pytest
import torch

from inpaint import Inpainter, build_generator
from inpaint.composite import check_image, check_mask, composite, generator_input, hole_to_validity


def make_pair(h: int = 8, w: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    image = torch.rand(2, 3, h, w) * 2 - 1
    mask = (torch.rand(2, 1, h, w) > 0.5).float()
    return image, mask


def test_composite_keeps_known_pixels_and_fills_holes() -> None:
    image, mask = make_pair()
    prediction = torch.rand_like(image)
    result = composite(image, prediction, mask)
    holes = mask.bool().expand_as(image)
    assert torch.equal(result[holes], prediction[holes])
    assert torch.equal(result[~holes], image[~holes])


def test_generator_input_hides_holes_and_appends_the_mask() -> None:
    image, mask = make_pair()
    x = generator_input(image, mask)
    assert x.shape == (2, 4, 8, 10)
    assert torch.equal(x[:, 3:], mask)
    assert (x[:, :3][mask.bool().expand_as(image)] == 0).all()
    assert torch.equal(hole_to_validity(hole_to_validity(mask)), mask)


def test_check_mask_accepts_0_1_and_0_255() -> None:
    image, mask = make_pair()
    assert torch.equal(check_mask(mask, image), mask)
    as_bytes = (mask * 255).to(torch.uint8)
    checked = check_mask(as_bytes, image)
    assert checked.dtype == image.dtype and torch.equal(checked, mask)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (torch.zeros(2, 3, 8, 10), "single-channel"),
        (torch.zeros(2, 8, 10), "single-channel"),
        (torch.zeros(2, 1, 8, 9), "must match the image"),
        (torch.zeros(1, 1, 8, 10), "must match the image"),
        (torch.full((2, 1, 8, 10), 0.5), "binary"),
        (torch.full((2, 1, 8, 10), 128.0), "binary"),
    ],
)
def test_check_mask_rejects_bad_masks(mask: torch.Tensor, message: str) -> None:
    image, _ = make_pair()
    with pytest.raises(ValueError, match=message):
        check_mask(mask, image)


def test_check_image_rejects_bad_images() -> None:
    with pytest.raises(ValueError, match="image must have shape"):
        check_image(torch.zeros(1, 4, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        check_image(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_image([[0.0]])
    out_of_range = torch.full((1, 3, 8, 8), 2.0)
    assert check_image(out_of_range) is out_of_range  # range is only checked in debug mode
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_image(out_of_range, debug=True)


def test_inpainter_validates_and_composites() -> None:
    image, mask = make_pair(16, 16)
    model = Inpainter(build_generator("global_local", width=0.0625, depth=1), debug=True).eval()
    result = model(image, (mask * 255).to(torch.uint8))
    assert torch.equal(result.composited, composite(image, result.prediction, mask))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        model(image * 3, mask)
    with pytest.raises(ValueError, match="single-channel"):
        model(image, mask.expand(-1, 3, -1, -1))
