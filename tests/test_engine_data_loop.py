"""engine.data (resumable, sharded, per-item seeds) and engine.loop (NaN stop keeps the last checkpoint)."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from engine.checkpoint import Checkpointer
from engine.data import ResumableSampler, SeededItems, infinite_batches, shard_indices
from engine.distributed import DistContext
from engine.logger import RunLogger
from engine.loop import LoopSchedule, NonFiniteLossError, train_loop


def epoch(sampler, e, start=0):
    sampler.set_position(e, start)
    return list(sampler)


def test_sampler_resumes_mid_epoch_and_shards_like_distributed_sampler():
    s = ResumableSampler(size=23, batch_size=2, seed=5)
    full = epoch(s, 1)
    assert s.batches_per_epoch == 11 and len(full) == 22 and len({i for i, _ in full}) == 22
    assert epoch(s, 1, start=4) == full[8:]
    assert epoch(s, 2) != full and epoch(ResumableSampler(23, 2, seed=5), 1) == full  # order depends on seed, epoch
    shards = [epoch(ResumableSampler(23, 2, seed=5, rank=r, world_size=2), 1) for r in range(2)]
    assert [len(x) for x in shards] == [10, 10]  # 5 batches of 2 per process
    merged = [item for pair in zip(*shards, strict=True) for item in pair]
    assert merged == epoch(ResumableSampler(23, 4, seed=5), 1)  # two processes split one process's epoch
    with pytest.raises(ValueError, match="fewer than one batch"):
        ResumableSampler(size=3, batch_size=2, world_size=2)


def test_items_get_their_seed_before_loading():
    seen = []

    class Items:
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return torch.tensor([i, seen[-1]])

    s = ResumableSampler(8, batch_size=2, seed=0)
    loader = DataLoader(SeededItems(Items(), seen.append), batch_size=2, sampler=s)
    first = list(infinite_batches_n(loader, s, 0, 6))
    resumed = list(infinite_batches_n(loader, s, 3, 3))
    assert all(torch.equal(a, b) for a, b in zip(first[3:], resumed, strict=True))  # same items, same seeds
    assert len({int(b[0, 1]) for b in first}) == 6
    assert shard_indices(5, 1, 2) == [1, 3]


def infinite_batches_n(loader, sampler, start, n):
    it = infinite_batches(loader, sampler, start)
    return [next(it) for _ in range(n)]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = nn.Linear(1, 1)
    ckpt = Checkpointer(tmp_path, {"model": model}, {"task": "t"}, {}, DistContext())

    def step(batch, iteration):
        with torch.no_grad():
            model.weight.add_(1.0)
        return {"loss": torch.tensor(float("nan") if iteration == 5 else 1.0)}

    schedule = LoopSchedule(max_iters=8, log_interval=1, checkpoint_interval=2)
    logger = RunLogger(tmp_path / "tb", enabled=False)
    with pytest.raises(NonFiniteLossError, match=r"iteration 5 \(loss=nan\).*last good checkpoint is .*last\.pt"):
        train_loop(step, iter(range(100)), 0, schedule, DistContext(), ckpt, logger, lambda: 0.1, 1)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["iteration"] == 4 and saved["state"]["model"]["weight"].item() == pytest.approx(
        model.weight.item() - 1.0)
