"""Preemption (SIGTERM from SLURM or Kubernetes) and Ctrl-C: save where the run stopped.

Lightning stops a fit after the batch in progress on SIGTERM, raising ``SIGTERMException`` (a
``SystemExit`` with status 0) and saving nothing. This callback writes a mid-epoch checkpoint
(atomically, through the trainer's checkpoint IO) to the path ``ckpt_path=last`` resumes from;
``train.py`` then exits non-zero so a scheduler does not read the run as finished. Other
exceptions (a diverged loss, a bug) save nothing: their weights are not worth resuming.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger("hdvision")


class Preemption(pl.Callback):
    def __init__(self, dirpath: str, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.saved: Path | None = None

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException | KeyboardInterrupt):
            return
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        what = "SIGTERM" if isinstance(exception, SIGTERMException) else "SIGINT (Ctrl-C)"
        trainer.save_checkpoint(self.path)
        self.saved = self.path
        batch = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        log.warning(
            "Interrupted by %s at epoch %d, batch %d: saved %s; continue with ckpt_path=last",
            what,
            trainer.current_epoch,
            batch,
            self.path,
        )


# The exit status a preempted run ends with (as a shell reports a SIGTERM-killed process).
PREEMPTED_EXIT_CODE = 128 + signal.SIGTERM
