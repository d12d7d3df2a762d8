"""Writes ``report.png`` at the end of fitting: loss, accuracy and learning-rate curves."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl


class TrainingReport(pl.Callback):
    def __init__(self, filename: str = "report.png") -> None:
        self.filename = filename
        self.steps: list[tuple[int, float, float | None]] = []
        self.epochs: list[tuple[int, dict[str, float]]] = []
        self._epoch_end_step: int | None = None

    # Kept in checkpoints (plain data): the report of a resumed run covers the whole run.
    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "epochs": list(self.epochs)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps = [tuple(s) for s in state_dict.get("steps", [])]
        self.epochs = [tuple(e) for e in state_dict.get("epochs", [])]

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        loss = trainer.callback_metrics.get("train/loss_step")
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else None
        if loss is not None:
            self.steps.append((trainer.global_step, float(loss), lr))

    def _record(self, trainer: pl.Trainer, keys: tuple[str, ...], step: int | None = None) -> None:
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if k in keys}
        if values:
            self.epochs.append((trainer.global_step if step is None else step, values))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, ("val/loss", "val/acc"))

    # Epoch-level train metrics are reduced after the epoch-end hooks: read them at the start of
    # the next epoch (or at the end of fitting) and place them at the step where the epoch ended.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_end_step = trainer.global_step

    def _record_finished_train_epoch(self, trainer: pl.Trainer) -> None:
        if self._epoch_end_step is not None:
            self._record(trainer, ("train/acc", "train/loss_epoch"), self._epoch_end_step)
            self._epoch_end_step = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record_finished_train_epoch(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record_finished_train_epoch(trainer)
        if trainer.is_global_zero and self.steps:
            self.plot(Path(trainer.default_root_dir) / self.filename)

    def plot(self, path: Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_acc, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
        steps = [s for s, _, _ in self.steps]
        ax_loss.plot(steps, [v for _, v, _ in self.steps], alpha=0.5, label="train/loss (step)")
        val = [(s, m) for s, m in self.epochs if "val/loss" in m]
        ax_loss.plot([s for s, _ in val], [m["val/loss"] for _, m in val], "o-", label="val/loss")
        for key in ("train/acc", "val/acc"):
            points = [(s, m[key]) for s, m in self.epochs if key in m]
            ax_acc.plot([s for s, _ in points], [v for _, v in points], "o-", label=key)
        ax_lr.plot(steps, [lr for _, _, lr in self.steps], label="lr")
        for ax, title in ((ax_loss, "loss"), (ax_acc, "accuracy"), (ax_lr, "learning rate")):
            ax.set_title(title)
            ax.set_xlabel("optimizer step")
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path
