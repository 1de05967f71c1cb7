"""pad_collate: padding sizes and values, list keys."""

from __future__ import annotations

import pytest
import torch

from datasets.collate import pad_collate


def _item(h, w, fill=1):
    return {
        "image": torch.full((3, h, w), 0.5),
        "label": torch.full((h, w), fill, dtype=torch.long),
        "label_orig": torch.zeros(h + 1, w + 1, dtype=torch.long),
        "orig_size": torch.tensor([h + 1, w + 1]),
        "path": f"img_{h}x{w}.jpg",
    }


def test_pads_to_multiple_with_zero_and_ignore():
    b = pad_collate([_item(40, 70), _item(65, 30)], size_divisor=32, ignore_index=255)
    assert b["image"].shape == (2, 3, 96, 96) and b["label"].shape == (2, 96, 96)
    assert b["img_shape"].tolist() == [[40, 70], [65, 30]]
    assert (b["image"][0, :, :40, :70] == 0.5).all() and (b["image"][0, :, 40:] == 0).all()
    assert (b["image"][0, :, :, 70:] == 0).all()
    assert (b["label"][0, :40, :70] == 1).all() and (b["label"][0, 40:] == 255).all()
    assert (b["label"][1, :, 30:] == 255).all() and (b["label"][1, 65:] == 255).all()
    assert b["label"].dtype == torch.long
    assert isinstance(b["label_orig"], list) and b["label_orig"][1].shape == (66, 31)
    assert b["orig_size"].shape == (2, 2) and b["path"] == ["img_40x70.jpg", "img_65x30.jpg"]


def test_no_divisor_and_equal_sizes():
    b = pad_collate([_item(33, 20), _item(30, 21)], size_divisor=None)
    assert b["image"].shape == (2, 3, 33, 21)
    b = pad_collate([_item(64, 64), _item(64, 64)])
    assert b["image"].shape == (2, 3, 64, 64) and (b["label"] == 1).all()
    assert isinstance(b["label_orig"], list)  # always a list, even when sizes agree


def test_extra_pad_keys_and_empty():
    items = [dict(_item(10, 10), mask=torch.ones(1, 10, 10)), dict(_item(20, 12), mask=torch.ones(1, 20, 12))]
    b = pad_collate(items, size_divisor=8, pad_values={"mask": 0.0})
    assert b["mask"].shape == (2, 1, 24, 16) and b["mask"][0, 0, 10:].sum() == 0
    with pytest.raises(ValueError):
        pad_collate([])


def test_aspect_ratio_batch_sampler():
    from datasets.collate import AspectRatioBatchSampler

    groups = [0, 1, 0, 0, 1, 1, 0, 1, 0]
    s = AspectRatioBatchSampler(groups, batch_size=2, seed=0)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(9))
    assert all(len({groups[i] for i in b}) == 1 for b in batches)
    assert len(s) == len(batches) == 5
    s.set_epoch(1)
    assert list(s) != batches
    assert all(len(b) == 2 for b in AspectRatioBatchSampler(groups, 2, drop_last=True))
    ranks = [list(AspectRatioBatchSampler(groups, 2, num_replicas=2, rank=r)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3
