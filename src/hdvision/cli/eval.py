"""`python eval.py ckpt_path=...`: test a checkpoint on the configured data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hdvision.cli.runtime import print_config_tree
from hdvision.cli.train import build

log = logging.getLogger("hdvision")


def evaluate(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt} does not exist; pass the .ckpt file to test")
    if (cfg.get("extras") or {}).get("print_config"):
        print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / "config_tree.log")
    objects = build(cfg)
    for logger in objects["loggers"]:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    objects["trainer"].test(
        objects["model"], datamodule=objects["datamodule"], ckpt_path=str(ckpt), weights_only=True
    )
    metrics = {k: float(v) for k, v in objects["trainer"].callback_metrics.items()}
    log.info("Test metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics, objects
