"""engine.optim (poly LR with warmup, no-decay groups) and engine.amp / engine.distributed on one CPU process."""

import pytest
import torch
from torch import nn

from engine.amp import MixedPrecision
from engine.distributed import DistContext, all_gather_objects, all_reduce_sum, resolve_device, unwrap, wrap_model
from engine.optim import PolyWarmup, build_sgd, param_groups, poly_scheduler
from engine.threads import set_cpu_threads


def test_poly_rule_with_warmup_and_floor():
    rule = PolyWarmup(max_iters=100, power=0.9, min_ratio=0.01, warmup_iters=10, warmup_ratio=0.1)
    assert rule(0) == pytest.approx(1.0 * 0.1)  # warmup starts at warmup_ratio
    assert rule(5) == pytest.approx(((1 - 0.01) * 0.95**0.9 + 0.01) * (1 - 0.5 * 0.9))
    assert rule(50) == pytest.approx((1 - 0.01) * 0.5**0.9 + 0.01)
    assert rule(100) == pytest.approx(0.01) and rule(200) == pytest.approx(0.01)
    values = [rule(i) for i in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_scheduler_steps_per_iteration_and_round_trips():
    model = nn.Linear(2, 2)
    opt = build_sgd(model, lr=0.02, momentum=0.9, weight_decay=1e-4)
    sched = poly_scheduler(opt, max_iters=10, min_lr=1e-4)
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx((0.02 - 1e-4) * 0.6**0.9 + 1e-4)
    state = sched.state_dict()
    assert state["lr_lambdas"][0]["max_iters"] == 10  # the rule's settings are saved, not a lambda


def test_no_decay_group_holds_norms_and_biases():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    decay, no_decay = param_groups(model, 1e-4, no_decay_norm_bias=True)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3, 3, 3])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
    assert len(param_groups(model, 1e-4)) == 1


def test_amp_is_fp32_on_cpu_and_checks_its_mode():
    amp = MixedPrecision("auto", torch.device("cpu"))
    assert amp.name == "fp32" and not amp.scaler.is_enabled()
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with amp.autocast():
        loss = model(torch.ones(1, 3)).sum() * 1e3
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    amp.backward_step(loss, opt, list(model.parameters()), clip_norm=1.0)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(1.0, rel=1e-4)  # gradient clipped to norm 1, lr 1
    with pytest.raises(ValueError, match="amp must be one of"):
        MixedPrecision("off", torch.device("cpu"))


def test_single_process_helpers():
    ctx = DistContext()
    assert ctx.is_main and not ctx.distributed
    model = nn.Linear(2, 2)
    assert unwrap(wrap_model(model, ctx)) is model
    t = torch.tensor([1, 2])
    assert all_reduce_sum(t, ctx).tolist() == [1, 2] and all_gather_objects({"a": 1}, ctx) == [{"a": 1}]
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def test_thread_setting_is_checked():
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        set_cpu_threads(0)
