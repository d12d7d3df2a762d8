"""Make every training epoch depend on (seed, epoch) only, so a resumed run repeats the
uninterrupted one (``ckpt_path=last`` with ``trainer.deterministic=true``)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from hdvision.data.dataset import SeededSampler


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**32


def _is_stream(loader: Any) -> bool:
    """A loader that keeps its own position (LitData's StreamingDataLoader), not a sampler's."""
    sampler = getattr(loader, "sampler", None)
    return not isinstance(sampler, SeededSampler) and callable(getattr(loader, "state_dict", None))


class ResumableEpochs(pl.Callback):
    """At each training epoch start:

    - seed torch / NumPy / Python from (``seed``, rank, epoch): Lightning's checkpoints hold no
      RNG states, so a resumed run would otherwise draw other dropout masks;
    - on resume, restart the train iterator if it was started before Lightning set the sampler
      to the resumed epoch (Lightning creates it early and keeps it when resuming, so workers
      would prefetch epoch 0's order and augmentation seeds);
    - on a mid-epoch resume (a preempted run's checkpoint), skip the batches the checkpoint
      already trained on and restore the RNG states it saved, so the rest of the epoch is the
      uninterrupted run's (Lightning would otherwise replay the epoch's first batches).
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = 0 if seed is None else int(seed)
        self._restored: dict[str, Any] | None = None
        self._rng_at_next_batch: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # Plain tensors and numbers only: checkpoints load with weights_only=True.
        _, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # MT19937
        numpy_state = {"keys": torch.from_numpy(np.asarray(keys, np.int64)), "pos": int(pos)}
        numpy_state.update(has_gauss=int(has_gauss), gauss=float(gauss))
        return {
            "torch": torch.get_rng_state(),
            "numpy": numpy_state,
            "python": [list(v) if isinstance(v, tuple) else v for v in random.getstate()],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restored = state_dict

    @staticmethod
    def _restore_rng(state: dict[str, Any] | None) -> None:
        if not state:
            return
        torch.set_rng_state(state["torch"])
        numpy_state = state["numpy"]
        keys = numpy_state["keys"].numpy().astype(np.uint32)
        np.random.set_state(
            ("MT19937", keys, numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
        )
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fit_loop = trainer.fit_loop
        loader = trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        restored, self._restored = self._restored, None
        if _is_stream(loader):
            self._resume_stream(trainer, loader, restored)
            return
        if not (fit_loop.restarted_mid_epoch and isinstance(sampler, SeededSampler)):
            return
        # Lightning skips on_train_epoch_start when it restarts mid-epoch: continue that epoch here.
        done = fit_loop.epoch_loop.batch_progress.current.completed
        # Typed as its base class; the fit loop's epoch progress tracks `processed` too.
        sampler.set_epoch(fit_loop.epoch_progress.current.processed)  # type: ignore[attr-defined]
        sampler.skip_next(done * getattr(loader, "batch_size", 1))
        if fit_loop._data_fetcher is not None:
            iter(fit_loop._data_fetcher)
        # After the iterator: creating one draws its base seed from torch's generator, which the
        # uninterrupted run did before the epoch's first batch, not mid-epoch.
        self._restore_rng(restored)

    def _resume_stream(self, trainer: pl.Trainer, loader: Any, restored: dict | None) -> None:
        """A stateful loader (LitData's, data=shards) continues its stream from the state
        Lightning saved in the checkpoint (samples yielded, its epoch counter)."""
        fit_loop = trainer.fit_loop
        # Lightning hands the saved state over only when it sets the loader up after restoring
        # the checkpoint; a scheduler that asks for estimated_stepping_batches sets it up before.
        # (Lightning's own loading also skips a restart at an epoch's end.)
        states, combined = fit_loop._combined_loader_states_to_load, fit_loop._combined_loader
        pending = bool(states) and combined is not None
        if pending:
            combined._load_state_dicts(states)  # type: ignore[union-attr]
            fit_loop._combined_loader_states_to_load = []
        stale = False
        if not fit_loop.restarted_mid_epoch and getattr(loader, "restore", False):
            loader.restore = False  # the saved epoch had ended: the next one starts fresh
            stale = True
        if (pending or stale) and fit_loop._data_fetcher is not None:
            iter(fit_loop._data_fetcher)
        if fit_loop.restarted_mid_epoch:
            # LitData's loader starts its workers (drawing their base seed from torch's
            # generator) at the first batch, not at iter(): restore the states there.
            self._rng_at_next_batch = restored

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        restored, self._rng_at_next_batch = self._rng_at_next_batch, None
        self._restore_rng(restored)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fit_loop = trainer.fit_loop
        loader = trainer.train_dataloader
        if loader is not None and _is_stream(loader) and getattr(loader, "restore", False):
            # LitData clears its resume flag only when an epoch is read to the end; Lightning
            # stops at the epoch's length, so after a resumed epoch the next one would replay
            # the resumed position (an empty epoch).
            loader.restore = False
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
