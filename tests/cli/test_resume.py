"""`ckpt_path=last` continues the newest run where it stopped, in its own directory."""

import os
import signal

import pytest
import pytorch_lightning as pl
import torch

from hdvision.cli.train import train
from tests.conftest import TINY, compose


class SimulatedKill(RuntimeError):
    pass


class KillMidEpoch(pl.Callback):
    """Dies in the middle of ``epoch`` (after last.ckpt of the epoch before was written)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise SimulatedKill(f"killed at epoch {self.epoch}, batch {self.batch}")


# Dropout and train-time augmentation on, so that the RNG streams matter.
RUN = [
    *TINY,
    "trainer.max_epochs=3",
    "trainer.deterministic=true",
    "model.backbone.drop_rate=0.3",
    "+data.augmentations.Affine={rotate:[-10,10],p:0.8}",
    "data.num_workers=1",
    "data.persistent_workers=false",
]


def _final_weights(objects) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in objects["model"].state_dict().items()}


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    return train(compose("train", RUN, tmp_path_factory.mktemp("whole")))


def _assert_same_run(resumed_metrics, resumed, whole_metrics, whole):
    for key in ("val/acc", "val/loss", "train/loss_epoch", "test/acc", "test/loss"):
        assert resumed_metrics[key] == pytest.approx(whole_metrics[key], rel=1e-5), key
    a, b = _final_weights(whole), _final_weights(resumed)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)
    assert resumed["trainer"].current_epoch == 3


@pytest.mark.slow
def test_resumed_run_matches_the_uninterrupted_one(tmp_path, whole_run):
    whole_metrics, whole = whole_run

    root = tmp_path / "killed"
    run_dir = root / "logs/train/runs/2026-01-01_00-00-00-000001"
    kill = ["+callbacks.kill._target_=tests.cli.test_resume.KillMidEpoch"]
    kill += ["+callbacks.kill.epoch=1", "+callbacks.kill.batch=3", f"paths.output_dir={run_dir}"]
    with pytest.raises(SimulatedKill):
        train(compose("train", RUN + kill, root))
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()

    # The resumed job's own (Hydra) directory is root/out; its outputs go to the killed run's.
    resumed_metrics, resumed = train(compose("train", [*RUN, "ckpt_path=last"], root))
    assert resumed["trainer"].default_root_dir == str(run_dir)
    assert not (root / "out" / "checkpoints").exists()
    assert len(list((run_dir / "csv").iterdir())) == 2  # version_0 (killed), version_1

    _assert_same_run(resumed_metrics, resumed, whole_metrics, whole)


class SigtermMidEpoch(pl.Callback):
    """Sends this process SIGTERM in the middle of ``epoch``, as a scheduler preempts a job."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            # Only with Lightning's handler installed: the default one would end pytest.
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                raise RuntimeError("no SIGTERM handler installed")
            os.kill(os.getpid(), signal.SIGTERM)


class CtrlCMidEpoch(pl.Callback):
    """Sends this process SIGINT (Ctrl-C) as batch ``batch`` of ``epoch`` starts: Python raises
    KeyboardInterrupt there, before the batch is trained."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGINT)


@pytest.mark.slow
def test_ctrl_c_saves_mid_epoch_exits_130_and_resumes_exactly(tmp_path, whole_run):
    root = tmp_path / "interrupted"
    run_dir = root / "logs/train/runs/2026-01-01_00-00-00-000001"
    stop = ["+callbacks.stop._target_=tests.cli.test_resume.CtrlCMidEpoch"]
    stop += ["+callbacks.stop.epoch=1", "+callbacks.stop.batch=3", f"paths.output_dir={run_dir}"]
    # Python's own Ctrl-C handler, whatever earlier code in this process installed (the full
    # suite once left SIGINT not raising KeyboardInterrupt, and this test then trained to the end).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(SystemExit) as info:
            train(compose("train", RUN + stop, root))
    finally:
        # Lightning ignores further Ctrl-C while it shuts down, for the rest of the process.
        signal.signal(signal.SIGINT, previous)
    assert info.value.code == 130
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    steps_per_epoch = 24 // 4
    assert last["epoch"] == 1 and last["global_step"] == steps_per_epoch + 3  # mid-epoch

    resumed_metrics, resumed = train(compose("train", [*RUN, "ckpt_path=last"], root))
    _assert_same_run(resumed_metrics, resumed, *whole_run)


@pytest.mark.slow
def test_sigterm_saves_mid_epoch_exits_non_zero_and_resumes_exactly(tmp_path, whole_run):
    root = tmp_path / "preempted"
    run_dir = root / "logs/train/runs/2026-01-01_00-00-00-000001"
    stop = ["+callbacks.stop._target_=tests.cli.test_resume.SigtermMidEpoch"]
    stop += ["+callbacks.stop.epoch=1", "+callbacks.stop.batch=2", f"paths.output_dir={run_dir}"]
    with pytest.raises(SystemExit) as info:
        train(compose("train", RUN + stop, root))
    assert info.value.code == 143
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    steps_per_epoch = 24 // 4
    assert last["epoch"] == 1 and last["global_step"] == steps_per_epoch + 3  # mid-epoch

    resumed_metrics, resumed = train(compose("train", [*RUN, "ckpt_path=last"], root))
    _assert_same_run(resumed_metrics, resumed, *whole_run)


def test_last_ckpt_is_the_last_epoch_when_the_metric_stops_improving(tmp_path):
    # lr 0: every epoch has the same val/acc, so the top-1 checkpoint stays at epoch 0.
    run = [*TINY, "trainer.max_epochs=3", "model.optimizer.lr=0", "test=false"]
    _, objects = train(compose("train", run, tmp_path))
    folder = tmp_path / "out" / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    last = torch.load(folder / "last.ckpt", weights_only=True, map_location="cpu")
    assert last["epoch"] == 2
    assert last["global_step"] == objects["trainer"].global_step
    assert objects["trainer"].checkpoint_callback.best_model_path.endswith("epoch_000.ckpt")


class SignalMidEpoch(pl.Callback):
    """Sends this process ``signal`` at the end of batch ``batch`` of ``epoch``."""

    def __init__(self, epoch: int, batch: int, signal: str) -> None:
        self.epoch, self.batch, self.signal = epoch, batch, signal

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), getattr(signal, self.signal))


class FakeSubmititRequeue(SystemExit):
    pass


@pytest.mark.slow
def test_submitit_requeue_signal_saves_requeues_and_the_requeued_job_continues(
    tmp_path, whole_run, monkeypatch
):
    # What submitit does in a SLURM job: its USR2 handler requeues the job and exits at once.
    calls = []

    def submitit_handler(signum, frame):
        calls.append(signum)
        raise FakeSubmititRequeue(-1)

    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    root = tmp_path / "slurm"
    run_dir = root / "logs/train/multiruns/2026-01-01_00-00-00-000001/0"
    job = [*RUN, f"paths.output_dir={run_dir}"]
    stop = ["+callbacks.stop._target_=tests.cli.test_resume.SignalMidEpoch"]
    stop += ["+callbacks.stop.epoch=1", "+callbacks.stop.batch=2", "+callbacks.stop.signal=SIGUSR2"]
    try:
        with pytest.raises(FakeSubmititRequeue):
            train(compose("train", job + stop, root))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert calls == [signal.SIGUSR2]  # handed over once the checkpoint was written
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 24 // 4 + 3

    # The requeued job: same arguments, same directory, SLURM counts the restart.
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    resumed_metrics, resumed = train(compose("train", job, root))
    assert resumed["trainer"].default_root_dir == str(run_dir)
    _assert_same_run(resumed_metrics, resumed, *whole_run)


def test_requeue_signal_names_are_checked():
    from hdvision.callbacks.preemption import Preemption

    assert Preemption("x", requeue_signal="usr1").requeue_signal == signal.SIGUSR1
    assert Preemption("x", requeue_signal="none").requeue_signal is None
    with pytest.raises(ValueError, match="requeue_signal: no signal 'USR9'"):
        Preemption("x", requeue_signal="USR9")
