import pytorch_lightning as pl

from hdvision.cli.train import train
from tests.conftest import TINY, compose


class RecordRequiresGrad(pl.Callback):
    def __init__(self) -> None:
        self.body, self.head, self.groups = [], [], []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # Runs after BackboneFreeze (callbacks run in order): what this epoch trains.
        self.body.append(pl_module.backbone.conv_stem.weight.requires_grad)
        self.head.append(pl_module.backbone.get_classifier().weight.requires_grad)
        self.groups.append(len(trainer.optimizers[0].param_groups))


def test_backbone_is_frozen_until_the_configured_epoch_then_joins_with_a_lower_lr(tmp_path):
    cfg = compose(
        "train",
        [
            *TINY,
            "callbacks=[default,backbone_freeze]",
            "callbacks.backbone_freeze.unfreeze_backbone_at_epoch=2",
            "callbacks.backbone_freeze.backbone_initial_ratio_lr=0.1",
            "+callbacks.record._target_=tests.callbacks.test_finetuning.RecordRequiresGrad",
            "model.scheduler=null",
            "trainer.max_epochs=3",
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    record = objects["callbacks"][-1]
    assert record.body == [False, False, True]
    assert record.head == [True, True, True]
    groups = record.groups
    assert groups[2] == groups[0] + 1  # the body joined the optimizer as one new group
    optimizer = objects["trainer"].optimizers[0]
    assert optimizer.param_groups[-1]["lr"] < optimizer.param_groups[0]["lr"]
