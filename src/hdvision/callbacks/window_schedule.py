"""Change which windows a detail-windows model trains on, from a given epoch on."""

from __future__ import annotations

from typing import Any, ClassVar

import pytorch_lightning as pl

from hdvision.errors import UserError


class WindowSchedule(pl.Callback):
    """From epoch ``start_epoch`` on, ``model.backbone.set_training_windows(train_count,
    train_pool, train_prior)`` (``hdvision_detail_windows``). Why a schedule: from the image label
    alone the encoder starts learning only where the objects are a large share of its windows (the
    prior's 8 strongest on photos), but those 8 miss the label's digits on a quarter of the photo
    canvases; once it knows digits it can read more windows, or pick them itself
    (docs/results/megapixel_mnist.md). Set each epoch, so a resumed run gets them again."""

    # The training step costs more from start_epoch on: ``hdvision compare`` sizes its budget
    # with the cost after ``apply`` too.
    changes_step_cost: ClassVar[bool] = True

    def __init__(
        self,
        start_epoch: int,
        train_count: int | None = None,
        train_pool: int | None = None,
        train_prior: int = 0,
    ) -> None:
        if start_epoch < 0:
            raise ValueError(f"WindowSchedule: start_epoch={start_epoch} must be 0 or more")
        self.start_epoch = start_epoch
        self.windows: dict[str, Any] = {
            "train_count": train_count,
            "train_pool": train_pool,
            "train_prior": train_prior,
        }

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        backbone = getattr(pl_module, "backbone", None)
        if not hasattr(backbone, "check_training_windows"):
            raise UserError(
                f"WindowSchedule: the backbone ({type(backbone).__name__}) has no training "
                "windows; use it with model=detail_windows or drop callbacks.window_schedule"
            )
        # Refuse a bad schedule now, not after start_epoch epochs of training.
        assert backbone is not None
        try:
            backbone.check_training_windows(**self.windows)
        except ValueError as err:
            raise UserError(f"callbacks.window_schedule: {err}") from None

    def apply(self, pl_module: pl.LightningModule) -> None:
        backbone: Any = pl_module.backbone
        backbone.set_training_windows(**self.windows)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch >= self.start_epoch:
            self.apply(pl_module)
