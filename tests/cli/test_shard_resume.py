"""data=shards: `hdvision shard` from the command line, and a run preempted mid-epoch (SIGTERM)
resumes with the samples it had not seen and ends with the uninterrupted run's weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from hdvision.cli.main import main
from hdvision.cli.train import train
from tests.cli.test_resume import RUN, SimulatedKill, _assert_same_run
from tests.conftest import TINY, compose


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory):
    """The tiny HD-digits data set written as shards by the command line tool."""
    root = tmp_path_factory.mktemp("shards")
    data = [o for o in TINY if o.startswith("data.source.")]
    out = root / "shards"
    args = ["shard", *data, f"paths.root_dir={root}", "--out", str(out), "--shard-size", "8kB"]
    assert main(args) == 0
    assert len(list((out / "train").glob("chunk-*.bin"))) > 2
    return out


def _run_on(shards) -> list[str]:
    # RUN trains on data=hd_digits; the same model and schedule on its shards, shuffled by LitData.
    return [o for o in RUN if not o.startswith("data.source.")] + [
        "data=shards",
        f"data.source.uri={shards}",
        "data.image_size=[64,96]",
        "data.aug_scale=0.5",
    ]


def test_shard_command_refuses_another_data_set_in_one_line(tiny_shards, tmp_path, capsys):
    other = ["data.source.canvas=[64,96]", "data.source.num_train=12", "data.source.digit_size=16"]
    code = main(["shard", *other, f"paths.root_dir={tmp_path}", "--out", str(tiny_shards)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "holds shards of another data set" in err[0]


@pytest.fixture(scope="module")
def whole_shard_run(tiny_shards, tmp_path_factory):
    return train(compose("train", _run_on(tiny_shards), tmp_path_factory.mktemp("whole")))


def _stopped_run(run: list[str], root: Path, callback: str, batch: int, error: type) -> Path:
    """Trains ``run`` under ``root`` until ``callback`` (of tests.cli.test_resume) stops it at
    ``batch`` of epoch 1; returns the run directory."""
    run_dir = root / "logs/train/runs/2026-01-01_00-00-00-000001"
    stop = [f"+callbacks.stop._target_=tests.cli.test_resume.{callback}"]
    stop += ["+callbacks.stop.epoch=1", f"+callbacks.stop.batch={batch}"]
    with pytest.raises(error):
        train(compose("train", [*run, *stop, f"paths.output_dir={run_dir}"], root))
    return run_dir


@pytest.mark.slow
def test_sigterm_mid_epoch_on_shards_resumes_exactly(tiny_shards, whole_shard_run, tmp_path):
    run, root = _run_on(tiny_shards), tmp_path / "preempted"
    run_dir = _stopped_run(run, root, "SigtermMidEpoch", 2, SystemExit)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 24 // 4 + 3  # mid-epoch
    (state,) = last["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert state["num_samples_yielded"] > 0  # LitData's loader state, saved by Lightning
    resumed = train(compose("train", [*run, "ckpt_path=last"], root))
    _assert_same_run(resumed[0], resumed[1], *whole_shard_run)


@pytest.mark.slow
def test_killed_after_an_epoch_end_checkpoint_resumes_exactly(
    tiny_shards, whole_shard_run, tmp_path
):
    # The stream continues at the next epoch with the uninterrupted run's order (LitData's
    # epoch counter comes from the checkpoint, not from a fresh loader).
    run, root = _run_on(tiny_shards), tmp_path / "killed"
    _stopped_run(run, root, "KillMidEpoch", 3, SimulatedKill)
    resumed = train(compose("train", [*run, "ckpt_path=last"], root))
    _assert_same_run(resumed[0], resumed[1], *whole_shard_run)


class RecordSamples(pl.Callback):
    """Appends the split positions of every training batch to <out>/rank<r>_epoch<e>.txt."""

    def __init__(self, out: str) -> None:
        self.out = out

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        name = f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.txt"
        with open(Path(self.out) / name, "a") as f:
            f.write(" ".join(str(i) for i in batch["index"].tolist()) + "\n")


def _read(path: Path) -> list[int]:
    return [int(i) for i in path.read_text().split()]


@pytest.mark.slow
def test_two_ddp_ranks_read_disjoint_samples_that_make_each_epoch(tiny_shards, tmp_path):
    root = Path(__file__).resolve().parents[2]
    seen = tmp_path / "seen"
    seen.mkdir()
    run = [o for o in _run_on(tiny_shards) if not o.startswith("data.num_workers")]
    cmd = [sys.executable, str(root / "train.py"), *run, "trainer=ddp_sim", "test=false"]
    cmd += ["data.batch_size=8", "data.num_workers=2", "trainer.max_epochs=2"]
    cmd += ["+callbacks.seen._target_=tests.cli.test_shard_resume.RecordSamples"]
    cmd += [f"+callbacks.seen.out={seen}", f"paths.root_dir={tmp_path}"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    orders = []
    for epoch in range(2):
        ranks = [_read(seen / f"rank{r}_epoch{epoch}.txt") for r in range(2)]
        assert len(ranks[0]) == len(ranks[1]) == 12  # 24 samples, 2 ranks x 3 batches of 4
        assert not set(ranks[0]) & set(ranks[1])
        assert sorted(ranks[0] + ranks[1]) == list(range(24))  # the whole epoch, once
        orders.append(ranks[0] + ranks[1])
    assert orders[0] != orders[1]  # reshuffled every epoch
