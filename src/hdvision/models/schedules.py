"""LR schedules, each with optional linear warm-up, behind one protocol.

A scheduler factory (the ``_target_`` of ``conf/model/scheduler/*.yaml``, ``_partial_: true``) is
called by the LightningModule as ``factory(optimizer, total_steps=N)``, N being the run's optimizer
steps, and returns Lightning's scheduler configs: a list of ``{"scheduler", "interval", ...}``
dicts. Nothing is inferred from signatures or read back from scheduler attributes. A torch
scheduler stepped per optimizer step becomes such a factory with :func:`per_step`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingWarmRestarts,
    LambdaLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
)

SchedulerConfigs = list[dict[str, Any]]


def per_step(build: Callable[..., LRScheduler]) -> Callable[..., SchedulerConfigs]:
    """``build(optimizer, total_steps, **kwargs) -> LRScheduler`` as a factory of the protocol,
    stepped after every optimizer step."""

    @functools.wraps(build)
    def factory(optimizer: Optimizer, total_steps: int, **kwargs: Any) -> SchedulerConfigs:
        scheduler = build(optimizer, total_steps, **kwargs)
        return [{"scheduler": scheduler, "interval": "step", "frequency": 1}]

    return factory


def linear_warmup(optimizer: Optimizer, warmup_steps: int) -> LinearLR:
    return LinearLR(optimizer, start_factor=1e-3, end_factor=1.0, total_iters=warmup_steps)


def _with_warmup(optimizer: Optimizer, main: LRScheduler, warmup_steps: int) -> LRScheduler:
    if warmup_steps <= 0:
        return main
    warmup = linear_warmup(optimizer, warmup_steps)
    return SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])


@per_step
def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, eta_min_ratio: float = 0.0
) -> LRScheduler:
    """Linear warm-up for ``warmup_steps``, then one cosine decay to ``eta_min_ratio`` × LR."""
    decay = max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        progress = min(step, decay) / decay
        return eta_min_ratio + (1 - eta_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return _with_warmup(optimizer, LambdaLR(optimizer, factor), warmup_steps)


@per_step
def warmup_cosine_restarts(
    optimizer: Optimizer,
    total_steps: int,
    T_0: int,
    T_mult: int = 1,
    eta_min: float = 0.0,
    warmup_steps: int = 0,
) -> LRScheduler:
    """SGDR (cosine annealing with warm restarts, periods in optimizer steps) after a warm-up;
    the run's length does not enter."""
    main = CosineAnnealingWarmRestarts(optimizer, T_0=T_0, T_mult=T_mult, eta_min=eta_min)
    return _with_warmup(optimizer, main, warmup_steps)


@per_step
def one_cycle(
    optimizer: Optimizer,
    total_steps: int,
    pct_start: float = 0.1,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> OneCycleLR:
    """One-cycle (its warm-up is the first ``pct_start`` of the run); each param group peaks at
    its own LR, so per-group scales (the stem's) are kept."""
    return OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )


def reduce_on_plateau(
    optimizer: Optimizer,
    total_steps: int,
    monitor: str = "val/loss",
    warmup_steps: int = 0,
    **kwargs: Any,
) -> SchedulerConfigs:
    """ReduceLROnPlateau, stepped per epoch on ``monitor``; with ``warmup_steps``, a per-step
    linear warm-up beside it (LinearLR is chainable: it scales whatever LR the plateau set)."""
    configs = [
        {
            "scheduler": ReduceLROnPlateau(optimizer, **kwargs),
            "interval": "epoch",
            "monitor": monitor,
        }
    ]
    if warmup_steps > 0:
        warmup = linear_warmup(optimizer, warmup_steps)
        configs.append({"scheduler": warmup, "interval": "step", "frequency": 1})
    return configs
