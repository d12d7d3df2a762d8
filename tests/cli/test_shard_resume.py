"""data=shards: `hdvision shard` from the command line, and a run preempted mid-epoch (SIGTERM)
resumes with the samples it had not seen and ends with the uninterrupted run's weights."""

from __future__ import annotations

import pytest
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


@pytest.mark.slow
def test_sigterm_mid_epoch_on_shards_resumes_exactly(tiny_shards, whole_shard_run, tmp_path):
    run = _run_on(tiny_shards)

    root = tmp_path / "preempted"
    run_dir = root / "logs/train/runs/2026-01-01_00-00-00-000001"
    stop = ["+callbacks.stop._target_=tests.cli.test_resume.SigtermMidEpoch"]
    stop += ["+callbacks.stop.epoch=1", "+callbacks.stop.batch=2", f"paths.output_dir={run_dir}"]
    with pytest.raises(SystemExit):
        train(compose("train", run + stop, root))
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
    run = _run_on(tiny_shards)
    root = tmp_path / "killed"
    run_dir = root / "logs/train/runs/2026-01-01_00-00-00-000001"
    kill = ["+callbacks.kill._target_=tests.cli.test_resume.KillMidEpoch"]
    kill += ["+callbacks.kill.epoch=1", "+callbacks.kill.batch=3", f"paths.output_dir={run_dir}"]
    with pytest.raises(SimulatedKill):
        train(compose("train", run + kill, root))
    resumed = train(compose("train", [*run, "ckpt_path=last"], root))
    _assert_same_run(resumed[0], resumed[1], *whole_shard_run)
