"""The LightningModule: stem → timm backbone → loss and torchmetrics.

Hyper-parameters saved in checkpoints are plain data (names, numbers, lists), so checkpoints load
with ``torch.load(..., weights_only=True)``; the optimizer and scheduler factories are injected
and not saved (the run's config records them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from timm.optim import param_groups_weight_decay
from torchmetrics import MetricCollection

from hdvision.data.device_augment import build_device_augmentations
from hdvision.models.backbone import create_backbone
from hdvision.models.backbone import normalization as backbone_normalization
from hdvision.models.checkpoint import CheckpointError, inference_hparams, read_checkpoint
from hdvision.models.distill import Teacher, check_distill, distillation_loss
from hdvision.models.layer_shapes import apply_layer_shapes
from hdvision.models.metrics import classification_metrics
from hdvision.models.stems import create_stem

if TYPE_CHECKING:
    from pytorch_lightning.utilities import AttributeDict


def to_plain(value: Any) -> Any:
    """Mappings and sequences (e.g. OmegaConf containers) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [to_plain(v) for v in value]
    return value


class HDClassifier(pl.LightningModule):
    """``stem`` and ``backbone`` are plain specs: ``{name: ..., **kwargs}`` for
    :func:`create_stem` and :func:`create_backbone`. ``input_size`` (h, w), when set, is the size
    the stem expects: smaller batches are upsampled on the device after transfer.
    """

    if TYPE_CHECKING:  # Lightning types it as a MutableMapping; save_hyperparameters makes this
        hparams: AttributeDict
    mean: torch.Tensor  # buffers
    std: torch.Tensor

    def __init__(
        self,
        backbone: Mapping[str, Any],
        stem: Mapping[str, Any],
        num_classes: int,
        backbone_input: Sequence[int] | None = None,
        input_size: Sequence[int] | None = None,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        label_smoothing: float = 0.0,
        stem_lr_scale: float = 1.0,
        channels_last: bool = False,
        compile: bool = False,
        device_augmentations: Mapping[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        training_data: str | None = None,
        normalization: Mapping[str, Sequence[float]] | None = None,
        pruned: Mapping[str, Any] | None = None,
        distill: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for key, size in (("backbone_input", backbone_input), ("input_size", input_size)):
            if size is not None and (len(size) != 2 or min(size) < 1):
                raise ValueError(f"model.{key} must be two positive sizes [h, w], got {size}")
        distill = check_distill(dict(distill)) if distill else None
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"{len(class_names)} class_names for num_classes={num_classes}: {class_names}"
            )
        self.save_hyperparameters(
            to_plain(
                {
                    "backbone": backbone,
                    "stem": stem,
                    "num_classes": num_classes,
                    "backbone_input": backbone_input,
                    "input_size": input_size,
                    "label_smoothing": label_smoothing,
                    "stem_lr_scale": stem_lr_scale,
                    "channels_last": channels_last,
                    "compile": compile,
                    "device_augmentations": device_augmentations,
                    # Recorded for inference (hdvision.models.checkpoint): what the outputs
                    # mean and how images were decoded for the model.
                    "class_names": class_names,
                    "preprocessing": preprocessing,
                    # A folder or CSV of the training images (calibration, parity checks).
                    "training_data": training_data,
                    # A pruned backbone's channel counts (hdvision.compress.prune), or None.
                    "pruned": pruned,
                    # Training only (teacher path, alpha, temperature); inference ignores it.
                    "distill": distill,
                }
            )
        )
        stem_spec = dict(self.hparams.stem)
        self.stem = create_stem(stem_spec.pop("name"), self.hparams.backbone_input, **stem_spec)
        self.backbone = create_backbone(num_classes=num_classes, **self.hparams.backbone)
        if pruned:
            apply_layer_shapes(self.backbone, pruned["shapes"])
        if normalization is None:
            # timm's pretrained config decides; the checkpoint records it so inference never
            # depends on a later timm's default.
            timm_mean, timm_std = backbone_normalization(self.backbone)
            normalization = {"mean": list(timm_mean), "std": list(timm_std)}
        self.hparams["normalization"] = to_plain(normalization)
        for name in ("mean", "std"):
            value = torch.tensor(normalization[name]).view(1, 3, 1, 1) * 255
            self.register_buffer(name, value, persistent=False)
        if self.stem_normalizes:
            self.stem.set_input_normalization(self.mean, self.std)  # type: ignore[operator]
        self.device_augmentations = build_device_augmentations(device_augmentations)
        # Not a submodule: never trained, saved, moved to train mode or wrapped by DDP.
        self.teacher = None
        if distill:
            teacher = distill["teacher"]
            self.teacher = Teacher(HDClassifier.from_checkpoint(teacher), teacher, class_names)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.train_metrics = classification_metrics(num_classes, "train/")
        self.val_metrics = classification_metrics(num_classes, "val/")
        self.test_metrics = classification_metrics(num_classes, "test/")
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._forward = torch.compile(self._features) if compile else self._features

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, loaded: Mapping[str, Any] | None = None, **supplied: Any
    ) -> HDClassifier:
        """The trained model of a ``train.py`` checkpoint, in eval mode on CPU, built from the
        checkpoint alone (no Hydra config, no pretrained-weight files); ``loaded``: the file
        already read (:func:`read_checkpoint`); ``supplied`` fills fields an older checkpoint
        lacks (the error names them)."""
        import timm

        checkpoint = read_checkpoint(path) if loaded is None else loaded
        hparams = inference_hparams(checkpoint, path, **supplied)
        name = hparams["backbone"].get("name")
        if not timm.is_model(name):
            raise CheckpointError(
                f"{path}: backbone {name!r} is not in the installed timm {timm.__version__}; "
                "install the timm version the model was trained with"
            )
        # The state dict holds every weight: no pretrained file is read (``weights``, or a
        # part's, e.g. patch selection's ``encoder_weights``), nothing is compiled.
        backbone = {
            k: None if k.endswith("_weights") else v for k, v in hparams["backbone"].items()
        }
        hparams["backbone"] = {**backbone, "weights": None}
        hparams["compile"] = False
        hparams["distill"] = None  # the teacher is for training only
        model = cls(**hparams)
        try:
            model.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as err:
            raise CheckpointError(
                f"{path}: its weights do not fit the model its hyper-parameters describe "
                f"({str(err).splitlines()[0]})"
            ) from err
        return model.eval()

    # -- inputs ------------------------------------------------------------------------------
    @property
    def stem_normalizes(self) -> bool:
        """Whether the stem normalises its input itself, after shrinking it (the zoom), so that
        :meth:`prepare_input` hands it pixel values (0-255) instead."""
        return bool(getattr(self.stem, "normalizes_input", False))

    def prepare_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) → float at ``input_size``, normalised unless the stem normalises
        (:attr:`stem_normalizes`), on the current device; in training mode,
        ``device_augmentations`` first, at the batch's own resolution."""
        # channels_last is for convolutions; a stem that reads the input only through pooling
        # and matrix products (the zoom) reads it faster contiguous (docs/results/inference.md).
        to_channels_last = self.hparams.channels_last and getattr(
            self.stem, "reads_channels_last", True
        )
        layout = torch.channels_last if to_channels_last else torch.contiguous_format
        # A float copy this method owns, already in the layout the convolutions want: the
        # normalisation then runs in place (one pass over a large image instead of three).
        x = images.to(torch.float32, memory_format=layout, copy=True)
        if self.training and self.device_augmentations is not None:
            x = self.device_augmentations(x)
        size = self.hparams.input_size
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        if not self.stem_normalizes:
            x = x.sub_(self.mean).div_(self.std)
        if to_channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Upsampling after the transfer keeps host→device bytes at the augmentation resolution.
        if isinstance(batch, dict) and batch["image"].dtype == torch.uint8:
            if self.teacher is not None and self.training:
                # The teacher sees the same (augmented) uint8 images through its own stem.
                batch = dict(batch, teacher_logits=self.teacher(batch["image"]))
            batch = dict(batch, image=self.prepare_input(batch["image"]))
        return batch

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device)

    # -- model -------------------------------------------------------------------------------
    def stem_output(self, x: torch.Tensor) -> torch.Tensor:
        """The stem's output for prepared input, in the layout the backbone runs in."""
        x = self.stem(x)
        if self.hparams.channels_last:  # a no-op where the stem's output already is
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.stem_output(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for prepared input (see :meth:`prepare_input`)."""
        return self._forward(x)

    def _step(
        self, batch: dict, metrics: MetricCollection, stage: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["image"])
        labels = batch["label"]
        smoothing = self.hparams.label_smoothing
        if stage == "train" and "teacher_logits" in batch:
            spec = self.hparams.distill
            loss, kd, ce = distillation_loss(
                logits,
                batch["teacher_logits"],
                labels,
                spec["alpha"],
                spec["temperature"],
                smoothing,
            )
            self.log_dict({"train/kd_loss": kd, "train/ce_loss": ce}, batch_size=len(labels))
        else:
            loss = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        # A backbone's own training signal beside the label (detail windows' background).
        auxiliary = getattr(self.backbone, "auxiliary_loss", None)
        if stage == "train" and auxiliary is not None:
            self.log("train/auxiliary_loss", auxiliary, on_step=True, batch_size=len(labels))
            loss = loss + auxiliary
        # The progress bar reads the loss every step anyway: this check costs no extra sync.
        if stage == "train" and not torch.isfinite(loss.detach()).item():
            raise FloatingPointError(
                f"train/loss is {loss.item()} at step {self.global_step}: training diverged "
                "(lower model.optimizer.lr, or set trainer.gradient_clip_val)"
            )
        metrics.update(logits.detach(), labels)
        on_step = stage == "train"
        self.log(
            f"{stage}/loss",
            loss,
            on_step=on_step,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(labels),
            sync_dist=True,  # the mean over all DDP ranks (a no-op on one device)
        )
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage != "train")
        return loss, logits.detach()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics, "train")[0]

    # Logits go to callbacks (validation image grid, confusion matrix).
    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"logits": self._step(batch, self.val_metrics, "val")[1]}

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        return {"logits": self._step(batch, self.test_metrics, "test")[1]}

    # -- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        groups, lr_scales = [], []
        for part, lr_scale in ((self.stem, self.hparams.stem_lr_scale), (self.backbone, 1.0)):
            # No weight decay on norms and biases (timm's grouping; 1.0 only marks the decayed
            # group, which keeps the optimizer's own weight_decay); frozen params are left out.
            for group in param_groups_weight_decay(part, weight_decay=1.0):
                params = [p for p in group["params"] if p.requires_grad]
                if params:
                    groups.append(
                        {"params": params}
                        if group["weight_decay"]
                        else {"params": params, "weight_decay": 0.0}
                    )
                    lr_scales.append(lr_scale)
        optimizer = (self.optimizer_factory or torch.optim.AdamW)(groups)
        # A stem trained from scratch behind a pretrained backbone learns faster with more LR.
        for group, lr_scale in zip(optimizer.param_groups, lr_scales, strict=True):
            group["lr"] *= lr_scale
        if self.scheduler_factory is None:
            return optimizer
        # The scheduler protocol (hdvision.models.schedules): factory(optimizer, total_steps).
        total_steps = int(self.trainer.estimated_stepping_batches)
        return [optimizer], self.scheduler_factory(optimizer, total_steps=total_steps)
