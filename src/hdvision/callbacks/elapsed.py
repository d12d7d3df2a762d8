"""Logs, with every validation, how much training the model has had: minutes of training (wall
time of the fit minus validation) and images seen. ``hdvision compare`` draws its learning curves
(accuracy against minutes) from these two columns of the run's metrics."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl


class ElapsedTime(pl.Callback):
    def __init__(self) -> None:
        self.train_seconds = 0.0  # before this process: what a resumed checkpoint had
        self.images = 0
        self._since: float | None = None

    # Kept in checkpoints (plain numbers): a resumed run's clock goes on from where it stopped.
    def state_dict(self) -> dict[str, Any]:
        return {"train_seconds": self._seconds(), "images": self.images}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_seconds = float(state_dict.get("train_seconds", 0.0))
        self.images = int(state_dict.get("images", 0))

    def _seconds(self) -> float:
        running = time.perf_counter() - self._since if self._since is not None else 0.0
        return self.train_seconds + running

    def _pause(self) -> None:
        self.train_seconds = self._seconds()
        self._since = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._since is None:  # the clock runs from the first batch after a pause
            self._since = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        labels = batch.get("label") if isinstance(batch, dict) else None
        self.images += (len(labels) if labels is not None else 0) * trainer.world_size

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pause()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Logged with the validation metrics, so that they share a row of metrics.csv.
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            pl_module.log("time/train_minutes", self.train_seconds / 60)
            pl_module.log("time/images", float(self.images))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pause()
