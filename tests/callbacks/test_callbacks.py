from types import SimpleNamespace

import torch

from hdvision.callbacks.report import TrainingReport
from hdvision.trainer.loggers import wandb_has_credentials, wandb_logger


def test_wandb_is_offline_without_an_api_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not wandb_has_credentials()
    logger = wandb_logger(save_dir=str(tmp_path), project="t")
    assert logger._offline is True
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_logger(save_dir=str(tmp_path), project="t")._offline is False


def test_report_png_has_the_curves(tmp_path):
    report = TrainingReport()
    trainer = SimpleNamespace(
        callback_metrics={},
        optimizers=[SimpleNamespace(param_groups=[{"lr": 0.1}])],
        global_step=0,
        sanity_checking=False,
    )
    for step in range(5):
        trainer.global_step = step
        trainer.callback_metrics = {"train/loss_step": torch.tensor(2.0 - step / 5)}
        report.on_train_batch_end(trainer, None, None, None, step)
    trainer.callback_metrics = {"val/loss": torch.tensor(1.0), "val/acc": torch.tensor(0.5)}
    report.on_validation_epoch_end(trainer, None)
    report.on_train_epoch_end(trainer, None)
    trainer.global_step = 9  # train/acc of the epoch is only reduced after its end hooks
    trainer.callback_metrics = {"train/acc": torch.tensor(0.25)}
    report.on_train_epoch_start(trainer, None)
    assert len(report.steps) == 5 and report.epochs[0][1]["val/acc"] == 0.5
    assert report.epochs[1] == (4, {"train/acc": 0.25})  # placed where the epoch ended
    path = report.plot(tmp_path / "report.png")
    assert path.stat().st_size > 10_000 and path.read_bytes()[:4] == b"\x89PNG"
