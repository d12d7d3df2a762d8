"""`python eval.py ckpt_path=...`: test a checkpoint on the configured data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hdvision.callbacks.precise_bn import model_inputs, recompute_batchnorm_stats
from hdvision.cli.runtime import build, print_config_tree, use_checkpoint_architecture
from hdvision.models.checkpoint import check_config_matches, read_checkpoint

log = logging.getLogger("hdvision")


def evaluate(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt} does not exist; pass the .ckpt file to test")
    checkpoint = read_checkpoint(ckpt)  # one clear line for an empty, truncated or foreign file
    if (cfg.get("extras") or {}).get("print_config"):
        print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / "config_tree.log")
    use_checkpoint_architecture(cfg, checkpoint)  # a pruned checkpoint's channel counts
    objects = build(cfg)
    for logger in objects["loggers"]:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    model, datamodule = objects["model"], objects["datamodule"]
    check_config_matches(ckpt, checkpoint, model.hparams)
    num_batches = cfg.get("precise_bn_batches") or 0
    if num_batches > 0:
        # For checkpoints saved without the PreciseBatchNorm callback (or to try more batches).
        model.load_state_dict(checkpoint["state_dict"])
        datamodule.prepare_data()
        datamodule.setup("fit")
        inputs = model_inputs(model.eval(), datamodule.train_dataloader(), num_batches)
        count = recompute_batchnorm_stats(model, inputs)
        log.info("BatchNorm statistics recomputed over %d training batches", count)
        objects["trainer"].test(model, datamodule=datamodule)
    else:
        objects["trainer"].test(
            model, datamodule=datamodule, ckpt_path=str(ckpt), weights_only=True
        )
    metrics = {k: float(v) for k, v in objects["trainer"].callback_metrics.items()}
    log.info("Test metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics, objects
