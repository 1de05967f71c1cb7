"""Batch collation that pads variable-sized images and labels."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


def _round_up(v: int, d: int) -> int:
    return -(-v // d) * d


def pad_collate(
    batch: Sequence[Mapping[str, Any]],
    size_divisor: int | None = 32,
    ignore_index: int = 255,
    pad_values: Mapping[str, float] | None = None,
    list_keys: Sequence[str] = ("label_orig", "path"),
) -> dict[str, Any]:
    """Collate dict items, padding ``image`` and ``label`` at the bottom / right.

    - ``image`` (C, H, W): padded with 0 (the mean colour after normalisation) to the batch's
      largest H and W, rounded up to a multiple of ``size_divisor`` (None or 1: no rounding).
    - ``label`` (H, W): padded with ``ignore_index`` to the same size, so padding is never a class.
    - ``img_shape``: LongTensor (B, 2), each item's (H, W) before padding (added).
    - ``pad_values`` adds or overrides keys to pad the same way, e.g. ``{"mask": 0.0}``.
    - ``list_keys`` (default ``label_orig``, ``path``) are always kept as lists.
    - Any other tensor key is stacked when all shapes agree (``orig_size``, ``mask`` of a fixed
      size), else kept as a list; non-tensors become lists.
    """
    if not batch:
        raise ValueError("pad_collate got an empty batch")
    values = {"image": 0.0, "label": float(ignore_index)}
    if pad_values:
        values.update(pad_values)
    keys = list(batch[0].keys())
    out: dict[str, Any] = {}

    target_hw = None
    if "image" in batch[0] and isinstance(batch[0]["image"], torch.Tensor):
        hs = [int(b["image"].shape[-2]) for b in batch]
        ws = [int(b["image"].shape[-1]) for b in batch]
        out["img_shape"] = torch.tensor(list(zip(hs, ws, strict=True)), dtype=torch.long)
        th, tw = max(hs), max(ws)
        if size_divisor and size_divisor > 1:
            th, tw = _round_up(th, size_divisor), _round_up(tw, size_divisor)
        target_hw = (th, tw)

    for key in keys:
        items = [b[key] for b in batch]
        if key in values and target_hw is not None and all(isinstance(t, torch.Tensor) for t in items):
            th, tw = target_hw
            first = items[0]
            fill = values[key] if first.dtype.is_floating_point else int(values[key])
            out[key] = batched = first.new_full((len(items), *first.shape[:-2], th, tw), fill)
            for i, t in enumerate(items):
                h, w = t.shape[-2:]
                batched[i, ..., :h, :w] = t
        elif key in list_keys:
            out[key] = items
        elif all(isinstance(t, torch.Tensor) for t in items) and len({tuple(t.shape) for t in items}) == 1:
            out[key] = torch.stack(items)
        else:
            out[key] = items
    return out


class AspectRatioBatchSampler(Sampler[list[int]]):
    """Batches whose items share a group, e.g. landscape (0) vs. portrait (1) images.

    With variable-size pipelines (the paper's), padding a portrait and a landscape image to
    one batch size wastes up to half of the batch; grouping by orientation avoids that (as
    UperNet's reference code does). ``groups[i]`` is item i's group
    (``ADE20KDataset.orientation_groups()``). Each epoch the order is reshuffled from
    ``(seed, epoch)`` (call ``set_epoch``); with ``num_replicas`` > 1 every rank gets an
    equal share of the same batch list (padded by repeating batches), for DDP.
    """

    def __init__(
        self,
        groups: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.groups = [int(g) for g in groups]
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.seed, self.epoch = int(seed), 0
        self.num_replicas, self.rank = int(num_replicas), int(rank)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _all_batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        by_group: dict[int, list[int]] = {}
        for i, g in enumerate(self.groups):
            by_group.setdefault(g, []).append(i)
        batches = []
        for g in sorted(by_group):
            idx = np.asarray(by_group[g])
            if self.shuffle:
                idx = rng.permutation(idx)
            for s in range(0, len(idx), self.batch_size):
                b = idx[s : s + self.batch_size].tolist()
                if len(b) == self.batch_size or not self.drop_last:
                    batches.append(b)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.num_replicas > 1 and batches:
            extra = (-len(batches)) % self.num_replicas
            batches = (batches + batches[:extra])[self.rank :: self.num_replicas]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._all_batches())

    def __len__(self) -> int:
        return len(self._all_batches())
