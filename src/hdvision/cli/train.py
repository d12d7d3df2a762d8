"""`python train.py ...`: fit, test the best checkpoint, return the metric a sweeper optimises."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from hdvision.cli.runtime import find_last_checkpoint, instantiate_group, print_config_tree

log = logging.getLogger("hdvision")


def build(cfg: DictConfig) -> dict[str, Any]:
    """Datamodule, model, callbacks, loggers and trainer from a composed config."""
    if cfg.get("seed") is not None:  # `is not None`: seed 0 is a seed
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, num_classes=datamodule.num_classes)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return {
        "datamodule": datamodule,
        "model": model,
        "callbacks": callbacks,
        "loggers": loggers,
        "trainer": trainer,
    }


def _metrics(trainer: pl.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    output_dir = Path(cfg.paths.output_dir)
    if extras.get("print_config"):
        print_config_tree(cfg, save_to=output_dir / "config_tree.log")
    objects = build(cfg)
    datamodule, model, trainer = objects["datamodule"], objects["model"], objects["trainer"]
    for logger in objects["loggers"]:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if extras.get("cost_report"):
        from hdvision.analysis.cost import log_cost_report

        log_cost_report(model, datamodule.sample_size, objects["loggers"], output_dir)

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path == "last":
        ckpt_path = str(find_last_checkpoint(cfg.paths.log_dir, cfg.task_name))
        log.info("Resuming from %s", ckpt_path)
    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics = _metrics(trainer)
    if cfg.get("test"):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if best is None:
            log.warning("No best checkpoint found; testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update(_metrics(trainer))
        log.info("Best checkpoint: %s", best)
    log.info("Final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics, objects


def main(cfg: DictConfig) -> float | None:
    """Hydra entry: train and return ``cfg.optimized_metric`` (for sweepers)."""
    torch.set_float32_matmul_precision("high")
    metrics, _ = train(cfg)
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not logged; logged: {sorted(metrics)}")
    return metrics.get(name) if name else None
