"""What the model sees: validation images, the stem's output, predictions, a confusion matrix.

Each validation epoch (not the sanity check) this writes ``val_images/epoch_XXX.png`` (per image:
the input area-downsampled to the backbone size next to the stem's output, titled true/predicted)
and ``val_images/confusion_epoch_XXX.png`` in the run directory, and logs both to W&B and
TensorBoard when those loggers are active.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torchmetrics.classification import MulticlassConfusionMatrix

from hdvision.plots import plot_confusion, plot_grid, stem_views
from hdvision.trainer.context import datamodule_of

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier


class ValidationImages(pl.Callback):
    def __init__(self, num_images: int = 8, dirname: str = "val_images") -> None:
        self.num_images = num_images
        self.dirname = dirname
        self._confusion: MulticlassConfusionMatrix | None = None
        self._batch: dict[str, torch.Tensor] | None = None
        self.last_confusion: np.ndarray | None = None

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        num_classes = cast("HDClassifier", pl_module).hparams.num_classes
        self._confusion = MulticlassConfusionMatrix(num_classes).to(pl_module.device)
        self._batch = None

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: dict,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, dict) or "logits" not in outputs:
            raise TypeError("ValidationImages needs validation_step to return {'logits': ...}")
        preds = outputs["logits"].argmax(1)
        assert self._confusion is not None, "on_validation_epoch_start runs first"
        self._confusion.update(preds, batch["label"])
        if self._batch is None:
            n = self.num_images
            self._batch = {
                "image": batch["image"][:n].detach(),
                "label": batch["label"][:n].cpu(),
                "pred": preds[:n].cpu(),
            }

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._confusion is None:
            return
        confusion = self._confusion.compute().cpu().numpy()  # synced across ranks
        self.last_confusion = confusion
        if not trainer.is_global_zero or self._batch is None:
            return
        names = _class_names(trainer, confusion.shape[0])
        views = stem_views(pl_module, self._batch["image"])
        out = Path(trainer.default_root_dir) / self.dirname
        out.mkdir(parents=True, exist_ok=True)
        epoch = trainer.current_epoch
        grid = plot_grid(views, self._batch["label"], self._batch["pred"], names)
        matrix = plot_confusion(confusion, names)
        _save(grid, out / f"epoch_{epoch:03d}.png")
        _save(matrix, out / f"confusion_epoch_{epoch:03d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/images", [grid], step=trainer.global_step)
                logger.log_image("val/confusion", [matrix], step=trainer.global_step)
            elif isinstance(logger, TensorBoardLogger):
                for tag, image in (("val/images", grid), ("val/confusion", matrix)):
                    logger.experiment.add_image(tag, image, trainer.global_step, dataformats="HWC")


def _class_names(trainer: pl.Trainer, num_classes: int) -> list[str]:
    names = getattr(datamodule_of(trainer), "class_names", None)
    return list(names) if names else [str(i) for i in range(num_classes)]


def _save(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)
