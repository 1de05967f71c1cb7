"""The pure-PyTorch reference against an independent loop formula, and its gradients."""

import itertools

import pytest
import torch
from carafe_cases import loop_reassemble, random_case

from carafe_op import reassemble_reference

GRID = list(itertools.product([1, 3, 5, 7], [1, 2, 3, 4], [1, 2, 4], [True, False]))


@pytest.mark.parametrize("k,scale,groups,upsample", GRID)
def test_reference_matches_loop_formula(k, scale, groups, upsample):
    features, masks = random_case(2, 2 * groups, 3, 5, k, groups, scale, upsample)
    expected = loop_reassemble(features.numpy(), masks.numpy(), k, groups, scale, upsample)
    actual = reassemble_reference(features, masks, k, groups, scale, upsample)
    torch.testing.assert_close(actual, torch.from_numpy(expected))


@pytest.mark.parametrize("upsample", [True, False])
def test_reference_gradcheck_all_borders(upsample):
    """3x3 input under a 5x5 window: every tap of every output touches a border."""
    features, masks = random_case(1, 4, 3, 3, 5, 2, 2, upsample)
    features.requires_grad_()
    masks.requires_grad_()
    fn = lambda f, m: reassemble_reference(f, m, 5, 2, 2, upsample)
    assert torch.autograd.gradcheck(fn, (features, masks))
