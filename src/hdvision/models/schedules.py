"""LR schedules stepped per optimizer step, each with optional linear warm-up (torch schedulers)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingWarmRestarts,
    LambdaLR,
    LinearLR,
    LRScheduler,
    SequentialLR,
)


def _with_warmup(optimizer: Optimizer, main: LRScheduler, warmup_steps: int) -> LRScheduler:
    if warmup_steps <= 0:
        return main
    warmup = LinearLR(optimizer, start_factor=1e-3, end_factor=1.0, total_iters=warmup_steps)
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
