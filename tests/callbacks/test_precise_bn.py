import copy
import multiprocessing
from itertools import islice

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from hdvision.callbacks.precise_bn import PreciseBatchNorm, recompute_batchnorm_stats
from hdvision.cli.train import train
from tests.conftest import TINY, compose


def test_statistics_are_the_plain_average_over_the_batches_and_modes_are_restored():
    torch.manual_seed(0)
    bn, frozen, dropout = nn.BatchNorm2d(3), nn.BatchNorm2d(3), nn.Dropout(0.5)
    frozen.track_running_stats = False  # what BackboneFinetuning's freeze does
    model = nn.Sequential(bn, frozen, dropout).eval()
    frozen_stats = frozen.running_mean.clone(), frozen.running_var.clone()
    batches = [torch.randn(4, 3, 5, 5) * (i + 1) + i for i in range(3)]

    assert recompute_batchnorm_stats(model, batches) == 3

    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    variances = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_mean, means)
    torch.testing.assert_close(bn.running_var, variances)
    assert torch.equal(frozen.running_mean, frozen_stats[0])
    assert torch.equal(frozen.running_var, frozen_stats[1])
    assert bn.momentum == 0.1 and not bn.training and not dropout.training


def test_num_batches_must_be_positive():
    with pytest.raises(ValueError, match="num_batches"):
        PreciseBatchNorm(num_batches=0)


def _stats_gap_after_fit(tmp_path, overrides: list[str]) -> float:
    """Largest gap between the fitted (best checkpoint) model's BatchNorm means and those
    recomputed from its weights over the first 3 training batches."""
    cfg = compose(
        "train",
        [*TINY, "data.augmentations=null", "trainer.max_epochs=2", *overrides],
        tmp_path,
    )
    _, objects = train(cfg)
    model, datamodule = objects["model"], objects["datamodule"]
    expected = copy.deepcopy(model).eval()
    inputs = (
        expected.prepare_input(batch["image"]) for batch in islice(datamodule.train_dataloader(), 3)
    )
    recompute_batchnorm_stats(expected, inputs)
    pairs = zip(model.modules(), expected.modules(), strict=True)
    return max(
        (got.running_mean - want.running_mean).abs().max().item()
        for got, want in pairs
        if isinstance(got, nn.BatchNorm2d)
    )


def test_a_fit_saves_the_statistics_of_its_weights(tmp_path):
    assert _stats_gap_after_fit(tmp_path, ["callbacks.precise_bn.num_batches=3"]) < 1e-5


def test_with_ema_the_statistics_are_those_of_the_averaged_weights(tmp_path):
    ema = ["callbacks=[default,ema]", "callbacks.ema.update_starting_at_step=1"]
    gap = _stats_gap_after_fit(tmp_path, [*ema, "callbacks.precise_bn.num_batches=3"])
    assert gap < 1e-5


def test_without_it_running_averages_lag_the_weights(tmp_path):
    assert _stats_gap_after_fit(tmp_path, ["callbacks.precise_bn=null"]) > 1e-3


class _CountWorkers(pl.Callback):
    """Worker processes alive after precise BN ran (first val batch) and at each validation end."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *_) -> None:
        if not trainer.sanity_checking and batch_idx == 0:
            self.counts.append(len(multiprocessing.active_children()))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.counts.append(len(multiprocessing.active_children()))


def test_its_loader_leaves_no_worker_processes_behind(tmp_path):
    # Train and val keep their persistent workers (2 each); precise BN's own loader must not add
    # a third persistent set (issue 22: num_workers=8 left up to 24 processes).
    cfg = compose(
        "train",
        [
            *TINY,
            "data.num_workers=2",
            "trainer.max_epochs=2",
            "callbacks.precise_bn.num_batches=2",
            "test=false",
            "+callbacks.count._target_=tests.callbacks.test_precise_bn._CountWorkers",
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    (counter,) = [c for c in objects["callbacks"] if isinstance(c, _CountWorkers)]
    assert counter.counts == [4, 4, 4, 4]
