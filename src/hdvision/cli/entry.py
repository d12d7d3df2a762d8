"""The Hydra entry points, shared by ``python train.py`` / ``python eval.py`` in a checkout and by
``hdvision train`` / ``hdvision eval`` after ``pip install``.

The configs ship inside the package (``hdvision/conf``). Add your own config folder (experiments,
data sets) with Hydra's ``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``; its files are
found beside the packaged ones and win on equal names.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from hdvision.cli.configs import CONFIG_DIR
from hdvision.cli.errors import one_line, report, user_errors
from hdvision.cli.runtime import no_log_file_on_nonzero_ranks


def _one_line_on_bad_input(task: str, work: Callable[[], Any]) -> Any:
    """Bad input (a path, a file, a value) ends the run with one line and exit 2, not with the
    traceback Hydra would print (a sweep's failing job is recorded by cli.train, not here)."""
    try:
        return work()
    except user_errors() as err:
        logging.getLogger("hdvision").error("%s: %s", task, one_line(err))
        sys.exit(report(task, err))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _train(cfg: DictConfig) -> float | None:
    from hdvision.cli.train import main as run

    return _one_line_on_bad_input("train", lambda: run(cfg))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _eval(cfg: DictConfig) -> None:
    from hdvision.cli.eval import evaluate

    _one_line_on_bad_input("eval", lambda: evaluate(cfg))


def run(task: str, root: str | None = None) -> None:
    """Run ``train`` or ``eval`` on ``sys.argv[1:]`` (Hydra overrides and flags). ``root``:
    where ``data/`` and ``logs/`` go (``$HDVISION_ROOT`` wins; default: the current folder)."""
    os.environ.setdefault("HDVISION_ROOT", root or os.getcwd())
    no_log_file_on_nonzero_ranks(sys.argv)
    {"train": _train, "eval": _eval}[task]()
