"""LR schedules stepped per optimizer step, each with optional linear warm-up (torch schedulers)."""

from __future__ import annotations

import math

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


def linear_warmup(optimizer: Optimizer, warmup_steps: int) -> LinearLR:
    return LinearLR(optimizer, start_factor=1e-3, end_factor=1.0, total_iters=warmup_steps)


def _with_warmup(optimizer: Optimizer, main: LRScheduler, warmup_steps: int) -> LRScheduler:
    if warmup_steps <= 0:
        return main
    warmup = linear_warmup(optimizer, warmup_steps)
    return SequentialLR(optimizer, [warmup, main], milestones=[warmup_steps])


def warmup_cosine(
    optimizer: Optimizer, total_steps: int, warmup_steps: int = 0, eta_min_ratio: float = 0.0
) -> LRScheduler:
    """Linear warm-up for ``warmup_steps``, then one cosine decay to ``eta_min_ratio`` × LR."""
    decay = max(1, total_steps - warmup_steps)

    def factor(step: int) -> float:
        progress = min(step, decay) / decay
        return eta_min_ratio + (1 - eta_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return _with_warmup(optimizer, LambdaLR(optimizer, factor), warmup_steps)


def warmup_cosine_restarts(
    optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, warmup_steps: int = 0
) -> LRScheduler:
    """SGDR (cosine annealing with warm restarts, periods in optimizer steps) after a warm-up."""
    main = CosineAnnealingWarmRestarts(optimizer, T_0=T_0, T_mult=T_mult, eta_min=eta_min)
    return _with_warmup(optimizer, main, warmup_steps)


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
    optimizer: Optimizer, monitor: str = "val/loss", warmup_steps: int = 0, **kwargs
) -> ReduceLROnPlateau:
    """ReduceLROnPlateau (stepped per epoch on ``monitor``); ``warmup_steps`` adds a per-step
    linear warm-up next to it (the module schedules both)."""
    scheduler = ReduceLROnPlateau(optimizer, **kwargs)
    scheduler.monitor = monitor
    scheduler.warmup_steps = warmup_steps
    return scheduler
