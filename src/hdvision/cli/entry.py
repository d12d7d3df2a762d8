"""The Hydra entry points, shared by ``python train.py`` / ``python eval.py`` in a checkout and by
``hdvision train`` / ``hdvision eval`` after ``pip install``.

The configs ship inside the package (``hdvision/conf``). Add your own config folder (experiments,
data sets) with Hydra's ``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``; its files are
found beside the packaged ones and win on equal names.
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from hdvision.cli.configs import CONFIG_DIR
from hdvision.cli.runtime import no_log_file_on_nonzero_ranks


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _train(cfg: DictConfig) -> float | None:
    from hdvision.cli.train import main as run

    return run(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _eval(cfg: DictConfig) -> None:
    from hdvision.cli.eval import evaluate

    evaluate(cfg)


def run(task: str, root: str | None = None) -> None:
    """Run ``train`` or ``eval`` on ``sys.argv[1:]`` (Hydra overrides and flags). ``root``:
    where ``data/`` and ``logs/`` go (``$HDVISION_ROOT`` wins; default: the current folder)."""
    os.environ.setdefault("HDVISION_ROOT", root or os.getcwd())
    no_log_file_on_nonzero_ranks(sys.argv)
    {"train": _train, "eval": _eval}[task]()
