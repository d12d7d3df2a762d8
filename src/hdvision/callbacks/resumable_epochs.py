"""Make every training epoch depend on (seed, epoch) only, so a resumed run repeats the
uninterrupted one (``ckpt_path=last`` with ``trainer.deterministic=true``)."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch

from hdvision.data.dataset import SeededSampler


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**32


class ResumableEpochs(pl.Callback):
    """At each training epoch start:

    - seed torch / NumPy / Python from (``seed``, rank, epoch): Lightning's checkpoints hold no
      RNG states, so a resumed run would otherwise draw other dropout masks;
    - on resume, restart the train iterator if it was started before Lightning set the sampler
      to the resumed epoch (Lightning creates it early and keeps it when resuming, so workers
      would prefetch epoch 0's order and augmentation seeds).
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = 0 if seed is None else int(seed)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fit_loop = trainer.fit_loop
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        # Lightning's own condition for *not* starting a new iterator (training_epoch_loop.py).
        kept = fit_loop.is_resuming or fit_loop.epoch_loop.restarting
        stale = (
            kept
            and isinstance(sampler, SeededSampler)
            and sampler.iterated_epoch not in (None, sampler.epoch)
        )
        value = epoch_seed(self.seed + 7919 * trainer.global_rank, trainer.current_epoch)
        torch.manual_seed(value)
        np.random.seed(value)
        random.seed(value)
        if stale and fit_loop._data_fetcher is not None:
            iter(fit_loop._data_fetcher)
