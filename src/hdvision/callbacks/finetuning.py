"""Freeze the pretrained backbone for N epochs, then train it with a lower LR."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BackboneFinetuning
from torch import nn
from torch.optim import Optimizer


def backbone_body(backbone: Any) -> nn.ModuleList:
    """A timm model's children without its classifier (which is new and must always train)."""
    head = backbone.get_classifier()
    return nn.ModuleList(m for m in backbone.children() if m is not head)


class BackboneFreeze(BackboneFinetuning):
    """Lightning's ``BackboneFinetuning`` for ``stem → timm backbone``: the stem and the
    classifier head train from the start; the backbone body is frozen until
    ``unfreeze_backbone_at_epoch``, then joins the optimizer at ``backbone_initial_ratio_lr`` × the
    first param group's LR (the stem's), growing by ``lambda_func`` per epoch.
    """

    def freeze_before_training(self, pl_module: pl.LightningModule) -> None:
        self.freeze(backbone_body(pl_module.backbone), train_bn=self.train_bn)

    def finetune_function(
        self, pl_module: pl.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        # The parent only reads `pl_module.backbone`: hand it the body.
        body = SimpleNamespace(backbone=backbone_body(pl_module.backbone))
        super().finetune_function(cast(pl.LightningModule, body), epoch, optimizer)
