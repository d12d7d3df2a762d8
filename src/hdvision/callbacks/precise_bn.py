"""Recompute BatchNorm statistics with the current weights before each validation ("precise BN").

The running averages BatchNorm keeps during training mix statistics of many slightly different
weights; on sparse HD-digit canvases, evaluation accuracy was very sensitive to this: the same
final weights scored 73.2 % test accuracy with their running statistics and 87.2 % with
statistics recomputed over 50 training batches (docs/results/default_run.md, "Precise
BatchNorm"). Recomputing them before each validation makes validation metrics, the checkpoint
chosen from them and the saved model agree.

``torch.optim.swa_utils.update_bn`` does the same but resets every BatchNorm, including those a
``BackboneFinetuning`` freeze stopped tracking (``track_running_stats=False``), which it would
leave at mean 0 / variance 1; this loop skips them.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_warn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, IterableDataset

from hdvision.trainer.context import datamodule_of


def without_persistent_workers(loader: Any) -> Any:
    """``loader`` without persistent workers: train and val already keep theirs alive, a third
    persistent set would stay for the whole fit (3 x num_workers processes on a small machine)."""
    if not isinstance(loader, DataLoader) or not loader.persistent_workers:
        return loader
    # A streamed (iterable) data set has no sampler to hand on; its loader class (LitData's)
    # takes the same arguments otherwise.
    kwargs: dict[str, Any] = {
        "batch_size": loader.batch_size,
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "drop_last": loader.drop_last,
        "prefetch_factor": loader.prefetch_factor,
        "worker_init_fn": loader.worker_init_fn,
        "persistent_workers": False,
    }
    if not isinstance(loader.dataset, IterableDataset):
        kwargs["sampler"] = loader.sampler
    return type(loader)(loader.dataset, **kwargs)


def model_inputs(pl_module: pl.LightningModule, loader: Any, num_batches: int) -> Iterator[Any]:
    """The first ``num_batches`` inputs of ``loader`` as ``pl_module`` receives them; the loader's
    workers are shut down when done, not when the garbage collector gets to them."""
    batches = iter(loader)
    try:
        for batch in islice(batches, num_batches):
            batch = pl_module.transfer_batch_to_device(batch, pl_module.device, 0)
            batch = pl_module.on_after_batch_transfer(batch, 0)
            yield batch["image"] if isinstance(batch, dict) else batch[0]
    finally:
        shutdown = getattr(batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


@torch.no_grad()
def recompute_batchnorm_stats(model: torch.nn.Module, inputs: Any) -> int:
    """Reset the running statistics of every tracking BatchNorm of ``model`` and average them
    (cumulatively, not exponentially) over forward passes of ``inputs``; returns how many batches.
    Other modules stay in their current mode (dropout off, frozen BatchNorms untouched)."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    state = {m: (m.momentum, m.training) for m in layers}
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
    count = 0
    try:
        for x in inputs:
            model(x)
            count += 1
    finally:
        for m, (momentum, training) in state.items():
            m.momentum = momentum
            m.train(training)
    return count


class PreciseBatchNorm(pl.Callback):
    """Before each validation of a fit, recompute BatchNorm statistics over ``num_batches``
    training batches (from ``trainer.datamodule.train_dataloader()``); averaged across ranks.

    It runs at the first validation batch, after every ``on_validation_epoch_start``, so that with
    ``EMAWeightAveraging`` (which swaps the averaged weights in there) the statistics are those of
    the weights being validated and checkpointed.
    """

    def __init__(self, num_batches: int = 25) -> None:
        if num_batches < 1:
            raise ValueError(f"callbacks.precise_bn.num_batches must be >= 1, got {num_batches}")
        self.num_batches = num_batches

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx != 0 or dataloader_idx != 0:
            return
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        datamodule = datamodule_of(trainer)
        if datamodule is None:
            rank_zero_warn("PreciseBatchNorm needs a LightningDataModule; statistics not updated")
            return
        loader = without_persistent_workers(datamodule.train_dataloader())
        # Validation runs under inference mode; updated buffers must stay ordinary tensors.
        with torch.inference_mode(False):
            recompute_batchnorm_stats(pl_module, model_inputs(pl_module, loader, self.num_batches))
            for m in pl_module.modules():
                if isinstance(m, _BatchNorm) and m.track_running_stats:
                    for buf in (m.running_mean, m.running_var):
                        if buf is not None:
                            buf.copy_(trainer.strategy.reduce(buf.clone(), reduce_op="mean"))
