"""engine.checkpoint: atomic writes, full-state round trip with RNG, safetensors, and clear load errors."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from engine import checkpoint as ck
from engine.amp import MixedPrecision
from engine.checkpoint import Checkpointer, CheckpointError, atomic_save, read_checkpoint, read_weights, save_weights
from engine.distributed import DistContext
from engine.optim import build_sgd, poly_scheduler

META = {"task": "segmentation", "num_classes": 3}


def make_state(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))
    opt = build_sgd(model, lr=0.1)
    sched = poly_scheduler(opt, max_iters=10, warmup_iters=2)
    amp = MixedPrecision("auto", torch.device("cpu"))
    return model, opt, sched, amp


def train_steps(model, opt, sched, n):
    for _ in range(n):
        loss = model(torch.randn(2, 3, 8, 8)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_full_state_round_trip_continues_identically(tmp_path):
    model, opt, sched, amp = make_state(0)
    train_steps(model, opt, sched, 3)
    objects = {"model": model, "optimizer": opt, "scheduler": sched, "scaler": amp.scaler}
    Checkpointer(tmp_path, objects, META, {"a": 1}, DistContext()).save(3)
    train_steps(model, opt, sched, 2)
    expected = [p.detach().clone() for p in model.parameters()], random.random(), np.random.rand()

    model2, opt2, sched2, amp2 = make_state(1)  # different weights and RNG
    objects2 = {"model": model2, "optimizer": opt2, "scheduler": sched2, "scaler": amp2.scaler}
    assert Checkpointer(tmp_path, objects2, META, {}, DistContext()).load(tmp_path / "last.pt") == 3
    assert sched2.last_epoch == 3
    train_steps(model2, opt2, sched2, 2)
    assert all(torch.equal(a, b) for a, b in zip(expected[0], model2.parameters(), strict=True))
    assert (random.random(), np.random.rand()) == expected[1:]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = atomic_save({"x": torch.ones(3)}, tmp_path / "last.pt")
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(3)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_load_errors_name_the_file_and_both_values(tmp_path):
    model, opt, sched, amp = make_state(0)
    Checkpointer(tmp_path, {"model": model}, {"task": "inpainting"}, {}, DistContext()).save(1)
    with pytest.raises(CheckpointError, match=r"task 'inpainting', but 'segmentation' is expected"):
        read_checkpoint(tmp_path / "last.pt", task="segmentation")
    Checkpointer(tmp_path, {"model": model}, {"task": "segmentation", "num_classes": 150}, {}, DistContext()).save(1)
    with pytest.raises(CheckpointError, match=r"class count 150, but 3 is expected"):
        read_checkpoint(tmp_path / "last.pt", task="segmentation", num_classes=3)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt.pt.*cannot be read"):
        read_checkpoint(tmp_path / "corrupt.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        read_checkpoint(tmp_path / "foreign.pt")


def test_safetensors_weights_carry_meta_and_config(tmp_path):
    model = make_state(0)[0]
    path = save_weights(model, tmp_path / "model.safetensors", META, {"model": {"channels": 8}})
    state, meta, config = read_weights(path, task="segmentation", num_classes=3)
    assert meta == META and config == {"model": {"channels": 8}}
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with pytest.raises(CheckpointError, match="task 'segmentation', but 'inpainting'"):
        read_weights(path, task="inpainting")
    (tmp_path / "bad.safetensors").write_bytes(b"nonsense")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        read_weights(tmp_path / "bad.safetensors")
