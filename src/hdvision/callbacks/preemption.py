"""Preemption (SIGTERM from SLURM or Kubernetes, submitit's requeue signal) and Ctrl-C: save where
the run stopped.

Lightning stops a fit after the batch in progress on SIGTERM, raising ``SIGTERMException`` (a
``SystemExit`` with status 0) and saving nothing. This callback writes a mid-epoch checkpoint
(atomically, through the trainer's checkpoint IO) to the path ``ckpt_path=last`` resumes from;
``train.py`` then exits 128 + the signal (143 for SIGTERM, 130 for Ctrl-C, as a shell reports a
killed process) so a scheduler does not read the run as finished. Other exceptions (a diverged
loss, a bug) save nothing: their weights are not worth resuming.

Under the submitit launcher (``hydra/launcher=slurm``), SLURM sends ``USR2`` before the time limit
and on preemption; submitit's handler would requeue the job and exit at once, mid-batch, without a
checkpoint. Here that signal stops the fit the way SIGTERM does; once the checkpoint is written,
``train.py`` hands the signal to submitit's handler (:meth:`Preemption.requeue`), and the requeued
job continues from its own ``last.ckpt`` (``cli/train.py:resolve_resume``).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger("hdvision")


def submitit_requeue_signal() -> signal.Signals | None:
    """The signal submitit requeues a SLURM job on, when this process is a submitit job."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


class Preemption(pl.Callback):
    def __init__(self, dirpath: str, filename: str = "last", requeue_signal: str = "auto") -> None:
        """``requeue_signal``: ``auto`` (submitit's, inside a submitit job), a name (``USR1``) or
        ``none``: the signal that stops the fit like SIGTERM and is then handed to the handler
        that was installed before the fit (the scheduler's requeue)."""
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.saved: Path | None = None
        self.signal: signal.Signals | None = None  # what stopped the fit, once it did
        if requeue_signal == "auto":
            self.requeue_signal = submitit_requeue_signal()
        elif str(requeue_signal).lower() in ("none", "null", ""):
            self.requeue_signal = None
        else:
            name = str(requeue_signal).upper().removeprefix("SIG")
            if "SIG" + name not in signal.Signals.__members__:
                raise ValueError(
                    f"callbacks.preemption.requeue_signal: no signal {requeue_signal!r}"
                )
            self.requeue_signal = signal.Signals["SIG" + name]
        self._requeue_handler: Any = None
        self._requeued = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.requeue_signal is None:
            return
        self._requeue_handler = signal.getsignal(self.requeue_signal)
        signal.signal(self.requeue_signal, self._stop_for_requeue)

    def _stop_for_requeue(self, signum: int, frame: FrameType | None) -> None:
        log.warning("Received %s: stopping after this batch to save, then requeue", signum)
        self._requeued = True
        # Lightning's own SIGTERM handler (installed for the fit) stops after the batch in progress.
        stop = signal.getsignal(signal.SIGTERM)
        if callable(stop):
            stop(signal.SIGTERM, frame)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handler()
        if not isinstance(exception, SIGTERMException | KeyboardInterrupt):
            return
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        sigterm = isinstance(exception, SIGTERMException)
        stopped_by = signal.SIGTERM if sigterm else signal.SIGINT
        if sigterm and self._requeued and self.requeue_signal is not None:
            stopped_by = self.requeue_signal
        self.signal = stopped_by
        trainer.save_checkpoint(self.path)
        self.saved = self.path
        batch = trainer.fit_loop.epoch_loop.batch_progress.current.completed
        log.warning(
            "Interrupted by %s at epoch %d, batch %d: saved %s; continue with ckpt_path=last",
            stopped_by.name,
            trainer.current_epoch,
            batch,
            self.path,
        )

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore_handler()

    def _restore_handler(self) -> None:
        if self.requeue_signal is not None and self._requeue_handler is not None:
            signal.signal(self.requeue_signal, self._requeue_handler)

    def requeue(self) -> None:
        """After the checkpoint is saved: run the requeue handler the stop interrupted (submitit's
        requeues the job and exits); without one, nothing."""
        handler, self._requeue_handler = self._requeue_handler, None
        if self.signal is not None and self.signal == self.requeue_signal and callable(handler):
            handler(int(self.signal), None)


def exit_code(stopped_by: signal.Signals) -> int:
    """The status a run stopped by a signal ends with, as a shell reports a killed process."""
    return 128 + int(stopped_by)
