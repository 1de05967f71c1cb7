"""Every bad-input case of the operator API raises an error naming the argument."""

import pytest
import torch

from carafe_op import carafe, carafe_down


def good(upsample=True, dtype=torch.float32):
    features = torch.randn(1, 8, 5, 5, dtype=dtype)
    size = (10, 10) if upsample else (3, 3)
    return features, torch.rand(1, 2 * 9, *size, dtype=dtype)


def test_good_call_works():
    features, masks = good()
    assert carafe(features, masks, 3, 2, 2).shape == (1, 8, 10, 10)


@pytest.mark.parametrize(
    "mutate,error,pattern",
    [
        (lambda f, m: (f[0], m), ValueError, "features must be 4-D"),
        (lambda f, m: (f, m[0]), ValueError, "masks must be 4-D"),
        (lambda f, m: (f, m[:, :9]), ValueError, "masks must have shape"),
        (lambda f, m: (f, m[..., :9, :]), ValueError, "masks must have shape"),
        (lambda f, m: (f, m.double()), TypeError, r"same dtype.*cast"),
        (lambda f, m: (f.int(), m), TypeError, "features has unsupported dtype"),
        (lambda f, m: (f.numpy(), m), TypeError, "features must be a torch.Tensor"),
        (lambda f, m: (f, m.to("meta")), ValueError, "same device"),
    ],
)
def test_bad_tensors(mutate, error, pattern):
    features, masks = mutate(*good())
    with pytest.raises(error, match=pattern):
        carafe(features, masks, 3, 2, 2)


@pytest.mark.parametrize(
    "k,groups,scale,error,pattern",
    [
        (4, 2, 2, ValueError, "kernel_size must be odd"),
        (0, 2, 2, ValueError, "kernel_size must be an integer >= 1"),
        (-3, 2, 2, ValueError, "kernel_size"),
        (3, 2, 1.5, TypeError, "scale_factor must be an integer"),
        (3, 2, 0, ValueError, "scale_factor must be an integer >= 1"),
        (3, 3, 2, ValueError, "divisible by group_size"),
        (3, "2", 2, TypeError, "group_size"),
    ],
)
def test_bad_arguments(k, groups, scale, error, pattern):
    features, masks = good()
    with pytest.raises(error, match=pattern):
        carafe(features, masks, k, groups, scale)


def test_down_mask_size_must_be_ceil():
    features, _ = good()
    with pytest.raises(ValueError, match=r"\(1, 18, 3, 3\)"):
        carafe_down(features, torch.rand(1, 18, 2, 2), 3, 2, 2)
