"""Optimiser parameter groups and the poly learning-rate schedule with linear warmup."""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, weight_decay: float, no_decay_norm_bias: bool = False) -> list[dict]:
    """One group with ``weight_decay``; with ``no_decay_norm_bias`` a second, decay-free group holds
    the biases and normalisation parameters (a common refinement; mmseg's default decays everything)."""
    if not no_decay_norm_bias:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            (no_decay if isinstance(module, NORM_TYPES) or name == "bias" else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_sgd(model: nn.Module, lr: float, momentum: float = 0.9, weight_decay: float = 1e-4,
              no_decay_norm_bias: bool = False) -> torch.optim.SGD:
    """SGD with momentum over ``param_groups`` (the paper's optimiser: lr 0.02, momentum 0.9, wd 1e-4)."""
    return torch.optim.SGD(param_groups(model, weight_decay, no_decay_norm_bias), lr=lr, momentum=momentum)


class PolyWarmup:
    """LR factor at iteration ``i``: ``(1 - r) * (1 - i / max_iters) ** power + r`` with ``r = min_lr / lr``,
    times a linear warmup from ``warmup_ratio`` to 1 over the first ``warmup_iters`` (mmcv's rule).

    A plain object (not a lambda) so ``LambdaLR.state_dict`` stores its settings.
    """

    def __init__(self, max_iters: int, power: float = 0.9, min_ratio: float = 0.0,
                 warmup_iters: int = 0, warmup_ratio: float = 0.1) -> None:
        if max_iters < 1:
            raise ValueError(f"max_iters must be >= 1, got {max_iters}")
        self.max_iters = int(max_iters)
        self.power = float(power)
        self.min_ratio = float(min_ratio)
        self.warmup_iters = int(warmup_iters)
        self.warmup_ratio = float(warmup_ratio)

    def __call__(self, iteration: int) -> float:
        progress = min(iteration, self.max_iters) / self.max_iters
        factor = (1.0 - self.min_ratio) * (1.0 - progress) ** self.power + self.min_ratio
        if iteration < self.warmup_iters:
            factor *= 1.0 - (1.0 - iteration / self.warmup_iters) * (1.0 - self.warmup_ratio)
        return factor


def poly_scheduler(optimizer: torch.optim.Optimizer, max_iters: int, power: float = 0.9, min_lr: float = 0.0,
                   warmup_iters: int = 0, warmup_ratio: float = 0.1) -> LambdaLR:
    """A per-iteration ``LambdaLR`` with ``PolyWarmup`` (call ``step()`` after every optimiser step)."""
    base_lr = optimizer.param_groups[0]["lr"]
    rule = PolyWarmup(max_iters, power, min_lr / base_lr if base_lr > 0 else 0.0, warmup_iters, warmup_ratio)
    return LambdaLR(optimizer, rule)
