"""The iteration loop shared by the training scripts: step, NaN stop, logging, checkpoints, evaluation.

The task supplies ``step(batch, iteration) -> {name: loss}`` (forward, backward, optimiser
and scheduler steps); this loop does the rest. Iterations are counted from 1: after
``iteration`` steps the schedule is at ``iteration`` and that is the step logged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import Checkpointer
from .distributed import DistContext, all_reduce_sum
from .logger import Progress, RunLogger


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; training stopped before saving anything further."""


@dataclass(frozen=True)
class LoopSchedule:
    """How long to train and how often to log, checkpoint and evaluate (0 = never, except at the end)."""

    max_iters: int
    log_interval: int = 20
    checkpoint_interval: int = 1000
    eval_interval: int = 0


def reduce_losses(losses: Mapping[str, torch.Tensor | float], ctx: DistContext) -> dict[str, float]:
    """Losses averaged over processes, as floats (one all-reduce for all of them)."""
    values = torch.tensor([float(v) for v in losses.values()], dtype=torch.float64)
    all_reduce_sum(values, ctx)
    return {k: v / ctx.world_size for k, v in zip(losses, values.tolist(), strict=True)}


def train_loop(
    step: Callable[[Any, int], Mapping[str, torch.Tensor | float]],
    batches: Iterator[Any],
    start_iter: int,
    schedule: LoopSchedule,
    ctx: DistContext,
    checkpointer: Checkpointer,
    logger: RunLogger,
    lr: Callable[[], float],
    samples_per_iter: int,
    evaluate: Callable[[int], None] | None = None,
) -> int:
    """Run iterations ``start_iter + 1 .. max_iters``; checkpoint every ``checkpoint_interval`` and at
    the end. A non-finite loss raises ``NonFiniteLossError`` naming the iteration and the last good
    checkpoint, which is left untouched. Returns the final iteration."""
    progress = Progress(schedule.max_iters, start_iter, enabled=ctx.is_main)
    tick, ticks = time.perf_counter(), 0
    try:
        for iteration in range(start_iter + 1, schedule.max_iters + 1):
            losses = reduce_losses(step(next(batches), iteration), ctx)
            bad = [f"{k}={v}" for k, v in losses.items() if not math.isfinite(v)]
            if bad:
                last = checkpointer.last
                kept = f"the last good checkpoint is {last}" if Path(last).is_file() else "no checkpoint yet"
                raise NonFiniteLossError(
                    f"non-finite loss at iteration {iteration} ({', '.join(bad)}); training stopped, {kept}"
                )
            current_lr = lr()
            progress.update(losses, current_lr)
            ticks += 1
            if iteration % schedule.log_interval == 0 or iteration == schedule.max_iters:
                now = time.perf_counter()
                logger.scalars({f"train/{k}": v for k, v in losses.items()}, iteration)
                logger.scalars({"train/lr": current_lr,
                                "train/throughput_img_per_s": samples_per_iter * ticks / (now - tick)}, iteration)
                tick, ticks = now, 0
            if iteration % schedule.checkpoint_interval == 0 or iteration == schedule.max_iters:
                checkpointer.save(iteration)
            if evaluate is not None and schedule.eval_interval and iteration % schedule.eval_interval == 0 \
                    and iteration != schedule.max_iters:
                progress.write(f"evaluating at iteration {iteration}")
                evaluate(iteration)
                tick = time.perf_counter()
    finally:
        progress.close()
        logger.flush()
    return schedule.max_iters
