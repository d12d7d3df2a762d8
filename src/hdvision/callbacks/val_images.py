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

from hdvision.models.layers import resize
from hdvision.trainer import datamodule_of

if TYPE_CHECKING:
    from hdvision.models.module import HDClassifier


def _to_uint8(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    """Normalised (B, 3, H, W) → uint8 (B, H, W, 3), values outside the image range clipped."""
    pixels = (images.float() * std + mean).clamp(0, 255).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def stem_views(pl_module: pl.LightningModule, images: torch.Tensor) -> dict[str, np.ndarray]:
    """For prepared input ``images``: the area-downsampled input and the stem output, as uint8."""
    model = cast("HDClassifier", pl_module)
    was_training = model.training
    model.eval()
    seen = model.stem(images)
    model.train(was_training)
    area = resize(images, seen.shape[-2:], "area")
    mean, std = model.mean, model.std
    return {"area": _to_uint8(area, mean, std), "stem": _to_uint8(seen, mean, std)}


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


def figure_to_array(fig) -> np.ndarray:
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def _save(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def plot_grid(
    views: dict[str, np.ndarray], labels: torch.Tensor, preds: torch.Tensor, names: list[str]
) -> np.ndarray:
    """Two rows per image set: area-downsampled input, stem output; titles true / predicted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    h, w = views["stem"].shape[1:3]
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 2 * 2.2 * h / w + 0.6), squeeze=False)
    for i in range(n):
        true, pred = names[int(labels[i])], names[int(preds[i])]
        for row, key in enumerate(("area", "stem")):
            ax = axes[row, i]
            ax.imshow(views[key][i])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel("area resize" if key == "area" else "stem output")
        colour = "green" if true == pred else "red"
        axes[0, i].set_title(f"true {true}\npred {pred}", color=colour, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)


def plot_confusion(confusion: np.ndarray, names: list[str]) -> np.ndarray:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * k, 0.6 + 0.45 * k))
    ax.imshow(confusion, cmap="Blues")
    for (r, c), count in np.ndenumerate(confusion):
        if count:
            ax.text(c, r, str(count), ha="center", va="center", fontsize=7)
    ax.set_xticks(range(k), names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return figure_to_array(fig)
