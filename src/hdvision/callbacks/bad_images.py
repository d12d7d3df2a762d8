"""Logs the files the ``skip`` policy replaced: count at every epoch end, paths the first time."""

from __future__ import annotations

import logging

import pytorch_lightning as pl

from hdvision.trainer.context import datamodule_of

log = logging.getLogger("hdvision")


class BadImageReport(pl.Callback):
    def __init__(self) -> None:
        self.reported: set[str] = set()

    def _report(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        skipped = getattr(datamodule_of(trainer), "skipped", None)
        if skipped is None:
            return
        pl_module.log(f"{stage}/skipped_images", float(len(skipped)), sync_dist=True)
        new = sorted(set(skipped) - self.reported)
        if new:
            log.warning(
                "%s: %d bad image files skipped so far (%d new):\n  %s",
                stage,
                len(skipped),
                len(new),
                "\n  ".join(new),
            )
            self.reported.update(new)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._report(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer, pl_module, "test")
