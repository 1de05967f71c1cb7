"""Mask-aware reassembly: hole guarantee, renormalisation, validity update."""

import pytest
import torch
from carafe_cases import random_case

from carafe_op import carafe, carafe_down, carafe_masked


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("validity_channels", [1, 8])
def test_hole_values_never_reach_the_output(direction, validity_channels):
    features, masks = random_case(2, 8, 9, 11, 5, 2, 2, direction == "up")
    validity = (torch.rand(2, validity_channels, 9, 11) > 0.6).double()
    validity[0, :, :5] = 0  # a large hole: some outputs see no valid tap at all
    out, new_validity = carafe_masked(features, validity, masks, 5, 2, 2, direction)
    garbage = features + (1 - validity) * 1e6
    out_garbage, _ = carafe_masked(garbage, validity, masks, 5, 2, 2, direction)
    torch.testing.assert_close(out, out_garbage)
    assert new_validity.shape[1] == validity_channels
    assert set(new_validity.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("direction", ["up", "down"])
def test_validity_update_is_window_has_a_valid_pixel(direction):
    upsample = direction == "up"
    features, masks = random_case(1, 4, 10, 10, 3, 1, 2, upsample)
    validity = torch.ones(1, 1, 10, 10, dtype=torch.float64)
    validity[:, :, 2:8, 2:8] = 0
    out, new_validity = carafe_masked(features, validity, masks, 3, 1, 2, direction)
    reassemble = carafe if upsample else carafe_down
    box = torch.ones_like(masks)
    expected = (reassemble(validity, box, 3, 1, 2) > 0).double()
    torch.testing.assert_close(new_validity, expected)
    assert (out[new_validity.expand_as(out) == 0] == 0).all()
    assert (new_validity == 0).any() and (new_validity == 1).any()


def test_all_valid_equals_plain_reassembly_when_kernels_sum_to_one_inside():
    """With every pixel valid and interior outputs, the renormaliser is exactly 1."""
    features, masks = random_case(1, 4, 8, 8, 3, 1, 2, True)
    validity = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    out, new_validity = carafe_masked(features, validity, masks, 3, 1, 2, "up")
    plain = carafe(features, masks, 3, 1, 2)
    torch.testing.assert_close(out[..., 2:-2, 2:-2], plain[..., 2:-2, 2:-2])
    assert (new_validity == 1).all()


def test_masked_gradcheck():
    features, masks = random_case(1, 2, 4, 5, 3, 1, 2, True)
    validity = (torch.rand(1, 1, 4, 5) > 0.4).double()
    features.requires_grad_()
    masks.requires_grad_()
    fn = lambda f, m: carafe_masked(f, validity, m, 3, 1, 2, "up")[0]
    assert torch.autograd.gradcheck(fn, (features, masks))


def test_masked_rejects_bad_validity():
    features, masks = random_case(1, 4, 6, 6, 3, 1, 2, True)
    with pytest.raises(ValueError, match="validity"):
        carafe_masked(features, torch.ones(1, 3, 6, 6, dtype=torch.float64), masks, 3, 1, 2)
    with pytest.raises(TypeError, match="validity"):
        carafe_masked(features, torch.ones(1, 1, 6, 6), masks, 3, 1, 2)
    with pytest.raises(ValueError, match="direction"):
        carafe_masked(features, torch.ones(1, 1, 6, 6, dtype=torch.float64), masks, 3, 1, 2, "sideways")
