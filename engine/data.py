"""Resumable, rank-sharded sampling with per-item random seeds.

Exact resume needs the data stream after iteration ``i`` to be the same whether or not the
run was interrupted at ``i``. ``ResumableSampler`` gives every epoch a fixed order (seeded by
the run seed and the epoch), splits it across processes like ``DistributedSampler``, can
start at any batch, and pairs every index with a seed derived from (run seed, epoch,
position). ``SeededItems`` hands that seed to the dataset's augmentation before loading the
item, so augmentations depend neither on worker processes nor on where a run resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def item_seed(seed: int, epoch: int, position: int) -> int:
    """A 32-bit seed for one item, independent of everything but its arguments."""
    return int(np.random.SeedSequence([seed, epoch, position]).generate_state(1)[0])


class ResumableSampler(Sampler):
    """Yields ``(index, item_seed)`` for this process's share of one epoch, from ``set_position``.

    Every epoch uses ``batches_per_epoch * batch_size * world_size`` items of a permutation
    seeded by ``(seed, epoch)`` (the remainder is dropped, as with ``drop_last=True``);
    process ``rank`` takes every ``world_size``-th of them.
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if size < batch_size * world_size:
            raise ValueError(
                f"the training set has {size} items, fewer than one batch ({batch_size} per process x {world_size})"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        self.batches_per_epoch = size // (batch_size * world_size)
        self.epoch, self.start_batch = 0, 0

    def set_position(self, epoch: int, batch: int = 0) -> None:
        """The next iteration starts at batch ``batch`` of epoch ``epoch``."""
        self.epoch, self.start_batch = epoch, batch

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_batch) * self.batch_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + 7919 * self.epoch))
        else:
            order = torch.arange(self.size)
        used = self.batches_per_epoch * self.batch_size * self.world_size
        positions = range(self.rank, used, self.world_size)[self.start_batch * self.batch_size :]
        for pos in positions:
            yield int(order[pos]), item_seed(self.seed, self.epoch, pos)


class SeededItems(Dataset):
    """``dataset[index]`` after calling ``reseed(item_seed)``, for keys ``(index, item_seed)``."""

    def __init__(self, dataset: Dataset, reseed: Callable[[int], None]) -> None:
        self.dataset = dataset
        self.reseed = reseed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        self.reseed(seed)
        return self.dataset[index]


class SeededTransform:
    """An albumentations pipeline whose random stream is set only through ``reseed``.

    It deliberately has no ``set_random_seed``: datasets that re-seed their transform per
    DataLoader worker leave it alone, so the per-item seed is what decides.
    """

    def __init__(self, transform: Any) -> None:
        self.transform = transform

    def reseed(self, seed: int) -> None:
        self.transform.set_random_seed(seed)

    def __call__(self, **data: Any) -> Any:
        return self.transform(**data)


def infinite_batches(loader: DataLoader, sampler: ResumableSampler, start_iter: int) -> Iterator[Any]:
    """Batches from iteration ``start_iter`` on, epoch after epoch (the sampler must be ``loader``'s)."""
    epoch, batch = divmod(start_iter, sampler.batches_per_epoch)
    while True:
        sampler.set_position(epoch, batch)
        yield from loader
        epoch, batch = epoch + 1, 0


def shard_indices(size: int, rank: int, world_size: int) -> list[int]:
    """Evaluation split: items ``rank, rank + world_size, ...`` - every item exactly once over all processes."""
    return list(range(rank, size, world_size))
