import math

import pytest
import pytorch_lightning as pl
import torch

from hdvision.cli.train import train
from hdvision.models.schedules import warmup_cosine, warmup_cosine_restarts
from tests.conftest import TINY, compose


def _lrs(make, steps):
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    (config,) = make(optimizer)  # the protocol: a list of Lightning scheduler configs
    assert config["interval"] == "step"
    scheduler = config["scheduler"]
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
    lrs = _lrs(lambda o: warmup_cosine_restarts(o, 70, T_0=10, T_mult=2, eta_min=0.0), 70)
    restarts = [i for i in range(1, 70) if lrs[i] > lrs[i - 1] + 1e-9]
    assert restarts == [10, 30]  # periods 10, 20, (40 ...)
    assert lrs[10] == pytest.approx(1.0) and lrs[9] < 0.05


def test_restarts_after_warmup_are_shifted():
    lrs = _lrs(lambda o: warmup_cosine_restarts(o, 40, T_0=10, warmup_steps=5), 40)
    restarts = [i for i in range(6, 40) if lrs[i] > lrs[i - 1] + 1e-9]
    assert restarts == [15, 25, 35]


# -- the LR a real (tiny) run applies at every optimizer step, per scheduler config ----------
class RecordLR(pl.Callback):
    def __init__(self) -> None:
        self.lrs: list[list[float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def _run_lrs(tmp_path, overrides: list[str]) -> list[list[float]]:
    # 24 training images in batches of 4: 6 steps per epoch, 18 in all.
    cfg = compose(
        "train",
        [
            *TINY,
            "trainer.max_epochs=3",
            "model.optimizer.lr=0.1",
            "+callbacks.record_lr._target_=tests.models.test_schedules.RecordLR",
            *overrides,
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    lrs = objects["callbacks"][-1].lrs
    assert len(lrs) == 18
    return lrs


def test_run_warmup_cosine_curve(tmp_path):
    lrs = [g[0] for g in _run_lrs(tmp_path, ["model.scheduler.warmup_steps=4"])]
    assert lrs[0] < 1e-3 and lrs[0] < lrs[1] < lrs[2] < lrs[3] < 0.1
    assert lrs[4] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:], strict=False))


def test_run_cosine_restarts_restart_where_they_should(tmp_path):
    overrides = ["model/scheduler=cosine_restarts", "model.scheduler.T_0=4"]
    overrides += ["model.scheduler.T_mult=2", "model.scheduler.eta_min=0"]
    lrs = [g[0] for g in _run_lrs(tmp_path, overrides)]
    restarts = [i for i in range(1, 18) if lrs[i] > lrs[i - 1]]
    assert restarts == [4, 12]
    assert lrs[0] == lrs[4] == lrs[12] == pytest.approx(0.1)


def test_run_one_cycle_peaks_each_group_at_its_own_lr(tmp_path):
    overrides = ["model/scheduler=one_cycle", "model.scheduler.pct_start=0.25"]
    lrs = _run_lrs(tmp_path, [*overrides, "model.stem_lr_scale=2.0"])
    stem, backbone = [g[0] for g in lrs], [g[-1] for g in lrs]
    peak = max(range(18), key=backbone.__getitem__)
    assert 3 <= peak <= 5 and backbone[peak] == pytest.approx(0.1, rel=0.05)
    assert backbone[0] == pytest.approx(0.1 / 25, rel=0.05) and backbone[-1] < 1e-3
    assert stem[peak] == pytest.approx(2 * backbone[peak])  # stem_lr_scale kept


def test_run_plateau_drops_at_an_epoch_end_after_its_warmup(tmp_path):
    overrides = ["model/scheduler=plateau", "model.scheduler.warmup_steps=3"]
    # val/skipped_images stays 0: no improvement after the first epoch, the LR halves after epoch 2.
    overrides += ["model.scheduler.patience=0", "model.scheduler.factor=0.5"]
    overrides += ["model.scheduler.monitor=val/skipped_images"]
    lrs = [g[0] for g in _run_lrs(tmp_path, overrides)]
    assert lrs[0] < lrs[1] < lrs[2] < 0.1  # warm-up
    assert lrs[3:12] == pytest.approx([0.1] * 9)
    assert lrs[12:] == pytest.approx([0.05] * 6)
