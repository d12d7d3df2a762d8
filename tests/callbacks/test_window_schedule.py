import pytest
import pytorch_lightning as pl
from torch import nn

from hdvision.callbacks import WindowSchedule
from hdvision.cli.train import train
from hdvision.models.detail_windows import DetailWindows
from tests.conftest import TINY, compose


class RecordWindows(pl.Callback):
    def __init__(self) -> None:
        self.windows: list[tuple] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        # Runs after WindowSchedule (callbacks run in order): what this epoch trains on.
        b = pl_module.backbone
        self.windows.append((b.train_count, b.train_pool, b.train_prior))


def test_detail_windows_train_on_the_scheduled_windows_from_the_start_epoch(tmp_path):
    cfg = compose(
        "train",
        [
            *TINY,
            "model=detail_windows",
            "model.backbone.name=hdvision_detail_windows",
            "model.backbone_input=null",
            "model.backbone.window=8",
            "model.backbone.count=8",
            "model.backbone.train_count=2",
            "model.backbone.width=4",
            "callbacks=[default,window_schedule]",
            "callbacks.window_schedule.start_epoch=1",
            "callbacks.window_schedule.train_count=4",
            "callbacks.window_schedule.train_pool=6",
            "callbacks.window_schedule.train_prior=1",
            "+callbacks.record._target_=tests.callbacks.test_window_schedule.RecordWindows",
            "trainer.max_epochs=2",
        ],
        tmp_path,
    )
    _, objects = train(cfg)
    assert objects["callbacks"][-1].windows == [(2, None, 0), (4, 6, 1)]


def test_a_schedule_for_a_model_without_windows_or_a_bad_one_is_refused():
    module = pl.LightningModule()
    module.backbone = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="model=detail_windows"):
        WindowSchedule(start_epoch=1, train_count=4).setup(pl.Trainer(), module, "fit")
    with pytest.raises(ValueError, match="start_epoch=-1"):
        WindowSchedule(start_epoch=-1)
    # A schedule the model cannot take is refused before training, and changes nothing.
    module.backbone = DetailWindows(count=8, train_count=4)
    with pytest.raises(ValueError, match="train_pool=2"):
        WindowSchedule(start_epoch=3, train_count=4, train_pool=2).setup(pl.Trainer(), module, "")
    assert (module.backbone.train_count, module.backbone.train_pool) == (4, None)


def test_compare_sizes_its_budget_with_the_scheduled_windows(tmp_path):
    from hdvision.cli.compare_plan import cost_changes

    cfg = compose("train", [*TINY, "experiment=photo_hd_windows"], tmp_path)
    (change,) = cost_changes(cfg)
    assert change.start_epoch == cfg.callbacks.window_schedule.start_epoch
    assert not cost_changes(compose("train", TINY, tmp_path / "default"))
