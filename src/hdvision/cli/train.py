"""`python train.py ...`: fit, test the best checkpoint, return the metric a sweeper optimises."""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import WeightAveraging
from pytorch_lightning.utilities.exceptions import SIGTERMException

from hdvision.callbacks.preemption import Preemption, exit_code
from hdvision.cli.runtime import (
    build,
    find_last_checkpoint,
    print_config_tree,
    use_checkpoint_architecture,
)
from hdvision.models.checkpoint import CheckpointError, check_config_matches, read_checkpoint
from hdvision.models.cost import log_cost_report, stem_input_size
from hdvision.tools.sweeps import append_trial
from hdvision.trainer.context import is_rank_zero

log = logging.getLogger("hdvision")


def init_weights_from(path: str, checkpoint: dict[str, Any], model: pl.LightningModule) -> None:
    """``init_from``: the checkpoint's weights (not its optimizer or loop state) into ``model``,
    refused with the differing settings named when it was trained for another architecture."""
    check_config_matches(path, checkpoint, model.hparams)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"init_from={path}: its weights do not fit this model ({str(err).splitlines()[0]})"
        ) from err
    log.info("Initialised the model's weights from %s", path)


def scalar_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """The trainer's logged scalars as floats (what sweepers and trials.csv get)."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def resolve_resume(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: an explicit ``ckpt_path`` always wins; ``ckpt_path=last``
    : the newest run's newest ``last*.ckpt``, and that run's directory becomes
    this run's output directory; a requeued SLURM job: its own directory's ``last.ckpt``."""
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and ckpt_path != "last":
        return ckpt_path
    own = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    if ckpt_path is None and restarts > 0 and own.is_file():
        # A requeued SLURM job runs again with the same arguments, into the same directory.
        log.info("Requeued job (SLURM_RESTART_COUNT=%d): continuing from %s", restarts, own)
        return str(own)
    if ckpt_path != "last":
        return None
    ckpt = find_last_checkpoint(cfg.paths.log_dir, cfg.task_name, exclude=cfg.paths.output_dir)
    with open_dict(cfg):
        cfg.paths.output_dir = str(ckpt.parent.parent)
    log.info("Resuming %s from %s; outputs continue there", ckpt.parent.parent, ckpt.name)
    return str(ckpt)


def _exit_if_stopped_by_signal(trainer: pl.Trainer, stop: SystemExit) -> None:
    """Lightning ends a SIGTERM stop with status 0 and a Ctrl-C with 1; a scheduler must see that
    the run did not finish (the Preemption callback saved where it stopped): exit 128 + signal,
    after the requeue handler of a submitit job ran."""
    # Trainer.callbacks is set by Lightning's callback connector, not declared on the class.
    callbacks = getattr(trainer, "callbacks", [])
    stopped = [c for c in callbacks if isinstance(c, Preemption) and c.signal is not None]
    if not stopped and not isinstance(stop, SIGTERMException):
        return
    by = (stopped[0].signal if stopped else None) or signal.SIGTERM
    log.error("Run stopped by %s before it finished; resume with ckpt_path=last", by.name)
    if stopped:
        stopped[0].requeue()  # submitit's handler requeues the job and exits
    raise SystemExit(exit_code(by)) from stop


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    ckpt_path = resolve_resume(cfg)
    output_dir = Path(cfg.paths.output_dir)
    # DDP ranks > 0 run this too: only rank 0 writes files into the run directory.
    rank_zero = is_rank_zero()
    if extras.get("print_config") and rank_zero:
        print_config_tree(cfg, save_to=output_dir / "config_tree.log")
    resumed = read_checkpoint(ckpt_path) if ckpt_path is not None else None
    init = read_checkpoint(cfg.init_from) if cfg.get("init_from") else None
    # A pruned checkpoint's channel counts are part of its architecture: build that one.
    use_checkpoint_architecture(cfg, resumed or init)
    objects = build(cfg)
    datamodule, model, trainer = objects["datamodule"], objects["model"], objects["trainer"]
    if init is not None:
        init_weights_from(cfg.init_from, init, model)
    for logger in objects["loggers"]:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    # Lightning's model summary counts FLOPs (and shows in/out sizes) only with an example input.
    size = stem_input_size(model, datamodule.sample_size)
    model.example_input_array = torch.zeros(1, 3, *size)
    if extras.get("cost_report") and rank_zero:
        log_cost_report(model, datamodule.sample_size, objects["loggers"], output_dir)

    if ckpt_path is not None and resumed is not None:
        check_config_matches(ckpt_path, resumed, model.hparams)
    if cfg.get("train", True):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        except SystemExit as stop:
            _exit_if_stopped_by_signal(trainer, stop)
            raise
    metrics = scalar_metrics(trainer)
    if cfg.get("test"):
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if best is None:
            log.warning("No best checkpoint found; testing the current weights")
        # After a fit, WeightAveraging (ema) would reload the checkpoint's raw weights over its
        # averaged state_dict; test what the checkpoint (and eval.py) holds as the model.
        trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]
        trainer.test(model, datamodule=datamodule, ckpt_path=best, weights_only=True)
        metrics.update(scalar_metrics(trainer))
        log.info("Best checkpoint: %s", best)
    log.info("Final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items())})
    return metrics, objects


def _finish_wandb() -> None:
    # Each sweep trial must be its own W&B run.
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def _failed_trial_value(cfg: DictConfig) -> float:
    if cfg.get("failed_trial_value") is not None:
        return float(cfg.failed_trial_value)
    direction = HydraConfig.get().sweeper.get("direction", "maximize")
    return -math.inf if str(direction).startswith("max") else math.inf


def _record_trial(
    cfg: DictConfig,
    status: str,
    value: float | None,
    error: str = "",
    metrics: dict[str, float] | None = None,
) -> None:
    """One row per multirun job in ``<sweep dir>/trials.csv`` (failed trials included)."""
    hydra_cfg = HydraConfig.get()
    append_trial(
        Path(hydra_cfg.sweep.dir, "trials.csv"),
        job=hydra_cfg.job.num,
        status=status,
        metric=str(cfg.get("optimized_metric")),
        value=value,
        overrides=" ".join(hydra_cfg.overrides.task),
        error=error,
        metrics=metrics or {},
    )


def main(cfg: DictConfig) -> float | None:
    """Hydra entry: train and return ``cfg.optimized_metric`` (for sweepers).

    In a multirun a failing job (NaN loss, out of memory, bad config) is logged, listed in
    ``trials.csv`` as failed and returns the worst value, so the sweep goes on.
    """
    torch.set_float32_matmul_precision("high")
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    name = cfg.get("optimized_metric")
    try:
        metrics, _ = train(cfg)
        if name and name not in metrics:
            raise KeyError(f"optimized_metric={name!r} was not logged; logged: {sorted(metrics)}")
        value = metrics.get(name) if name else None
        if in_sweep and value is not None and math.isnan(value):
            # Diverged (NaN loss): a failed trial, not a NaN for the sweeper to choke on.
            raise FloatingPointError(f"{name} is NaN")
    except Exception as error:
        if not in_sweep:
            raise
        value = _failed_trial_value(cfg)
        log.exception("Trial failed; reported to the sweeper as %s=%s", name, value)
        if is_rank_zero():
            _record_trial(cfg, "failed", value, f"{type(error).__name__}: {error}")
        return value
    finally:
        _finish_wandb()
    if in_sweep and is_rank_zero():
        _record_trial(cfg, "ok", value, metrics=metrics)
    return value
