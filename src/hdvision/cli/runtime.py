"""Hydra-side helpers shared by the entry points: build a run's objects from its config,
instantiate groups, print the config, find checkpoints."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import rich
import rich.syntax
import rich.tree
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger("hdvision")


def metric_mode(metric: str) -> str:
    """``min`` for a metric to minimise (a loss or an error), else ``max``."""
    name = str(metric).rsplit("/", 1)[-1].lower()
    return "min" if any(word in name for word in ("loss", "error", "err", "mse", "mae")) else "max"


# ${metric_mode:...} in the configs: resolvable in every process that imports the entry points.
if not OmegaConf.has_resolver("metric_mode"):
    OmegaConf.register_new_resolver("metric_mode", metric_mode)


def build(cfg: DictConfig) -> dict[str, Any]:
    """Datamodule, model, callbacks, loggers and trainer from a composed config."""
    if cfg.get("seed") is not None:  # `is not None`: seed 0 is a seed
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    # The data's classes and decode settings go into the checkpoint, for inference without config.
    model = instantiate(
        cfg.model,
        num_classes=datamodule.num_classes,
        class_names=datamodule.class_names,
        preprocessing=datamodule.preprocessing,
        training_data=datamodule.training_data,
    )
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


def use_checkpoint_architecture(cfg: DictConfig, checkpoint: dict[str, Any] | None) -> None:
    """Set ``model.pruned`` from the checkpoint a run starts from (None when it has none)."""
    if checkpoint is None or "pruned" not in cfg.model:
        return
    pruned = (checkpoint.get("hyper_parameters") or {}).get("pruned")
    with open_dict(cfg):
        cfg.model.pruned = pruned


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Every ``_target_`` entry of a group (callbacks, logger); ``null`` entries are skipped."""
    if not group:
        return []
    objects = []
    for name, spec in group.items():
        if isinstance(spec, DictConfig) and "_target_" in spec:
            log.info("Instantiating %s <%s>", name, spec._target_)
            objects.append(instantiate(spec))
    return objects


def print_config_tree(
    cfg: DictConfig,
    order: Sequence[str] = ("data", "model", "callbacks", "logger", "trainer", "paths", "extras"),
    save_to: str | Path | None = None,
) -> None:
    """The resolved config as a rich tree, one branch per group; also saved as text."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    fields = [f for f in order if f in cfg] + [f for f in cfg if f not in order]
    for field in fields:
        branch = tree.add(str(field), style="bold", guide_style="dim")
        value = cfg[field]
        text = (
            OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        )
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    if save_to is not None:
        with open(save_to, "w") as f:
            rich.print(tree, file=f)


def no_log_file_on_nonzero_ranks(argv: list[str]) -> None:
    """DDP ranks > 0 (started by Lightning with ``LOCAL_RANK`` set, in rank 0's run directory)
    must not write their own log file there (the Hydra + DDP trap): they log to the console."""
    if os.environ.get("LOCAL_RANK", "0") != "0":
        argv.append(f"hydra.job_logging.handlers.file.filename={os.devnull}")


def find_last_checkpoint(
    log_dir: str | Path, task_name: str, exclude: str | Path | None = None
) -> Path:
    """The newest checkpoint of the newest run of ``task_name`` (for ``ckpt_path=last``).

    The newest run folder (other than ``exclude``, this run's own) is the one to continue: when it
    has no checkpoint it died before its first one, and resuming an older run instead would
    silently continue another config. Inside it, ``last*.ckpt`` files are ranked by the global
    step they hold, so a stale ``last.ckpt`` beside a newer ``last-v1.ckpt`` is not taken.
    """
    from hdvision.models.checkpoint import read_checkpoint

    runs_dir = Path(log_dir, task_name, "runs")
    skip = Path(exclude).resolve() if exclude is not None else None
    runs = sorted(
        p
        for p in (runs_dir.iterdir() if runs_dir.is_dir() else [])
        if p.is_dir() and p.resolve() != skip
    )
    if not runs:
        raise FileNotFoundError(f"ckpt_path=last: no runs under {runs_dir} to resume from")
    candidates = list((runs[-1] / "checkpoints").glob("last*.ckpt"))
    if not candidates:
        raise FileNotFoundError(
            f"ckpt_path=last: the newest run {runs[-1]} has no checkpoints/last*.ckpt (it stopped "
            "before its first epoch ended); pass ckpt_path=<a .ckpt file> to continue another "
            "run, or remove that folder"
        )
    steps = {p: int(read_checkpoint(p).get("global_step", -1)) for p in candidates}
    return max(candidates, key=lambda p: (steps[p], p.stat().st_mtime))


def compose_outside_hydra_main(
    config_dir: str | Path,
    config_name: str,
    overrides: list[str],
    output_dir: str | Path | None = None,
    cwd: str | Path | None = None,
) -> DictConfig:
    """Compose a config as ``@hydra.main`` would (``${hydra:...}`` resolvable) for tools and tests.

    ``output_dir`` defaults to ``<paths.log_dir>/tools``; nothing is created there.
    """
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir or Path(cfg.paths.log_dir) / "tools")
        cfg.hydra.runtime.cwd = str(cwd or Path.cwd())
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg
