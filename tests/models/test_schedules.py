import math

import pytest
import torch

from hdvision.models.schedules import warmup_cosine, warmup_cosine_restarts


def _lrs(make, steps):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_then_cosine_to_eta_min():
    lrs = _lrs(lambda o: warmup_cosine(o, total_steps=110, warmup_steps=10, eta_min_ratio=0.1), 110)
    assert lrs[0] < 0.01 and lrs[0] < lrs[5] < lrs[9] < 1.0  # linear warm-up
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))  # monotone decay
    assert lrs[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_cosine_restarts_happen_at_T_0_and_then_T_0_times_T_mult():
    lrs = _lrs(lambda o: warmup_cosine_restarts(o, T_0=10, T_mult=2, eta_min=0.0), 70)
    restarts = [i for i in range(1, 70) if lrs[i] > lrs[i - 1] + 1e-9]
    assert restarts == [10, 30]  # periods 10, 20, (40 ...)
    assert lrs[10] == pytest.approx(1.0) and lrs[9] < 0.05


def test_restarts_after_warmup_are_shifted():
    lrs = _lrs(lambda o: warmup_cosine_restarts(o, T_0=10, warmup_steps=5), 40)
    restarts = [i for i in range(6, 40) if lrs[i] > lrs[i - 1] + 1e-9]
    assert restarts == [15, 25, 35]
