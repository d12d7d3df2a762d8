"""Configs for the argparse commands: where they are, composed outside ``@hydra.main``, and the
objects a tool builds from them."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

# The configs shipped inside the package (hdvision/conf).
CONFIG_DIR = str(files("hdvision") / "conf")


def config_dir() -> Path:
    """``$HDVISION_CONFIG_DIR`` when set, else the configs shipped in the package."""
    chosen = os.environ.get("HDVISION_CONFIG_DIR") or CONFIG_DIR
    if not Path(chosen, "train.yaml").is_file():
        raise SystemExit(f"HDVISION_CONFIG_DIR={chosen} holds no train.yaml")
    return Path(chosen).resolve()


def compose(overrides: list[str], config_name: str = "train") -> DictConfig:
    from hdvision.cli.runtime import compose_outside_hydra_main

    os.environ.setdefault("HDVISION_ROOT", os.getcwd())
    return compose_outside_hydra_main(config_dir(), config_name, overrides)


def set_up_datamodule(overrides: list[str]) -> Any:
    """The configured datamodule, its data prepared and every split set up."""
    from hydra.utils import instantiate

    datamodule = instantiate(compose(overrides).data)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule
