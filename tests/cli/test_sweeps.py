"""Multiruns through the real `python train.py -m` entry point (subprocesses, tiny data)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hdvision.cli.main import main
from tests.conftest import TINY, counted_over

ROOT = Path(__file__).resolve().parents[2]


def _multirun(tmp_path: Path, overrides: list[str]) -> Path:
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *TINY, f"paths.root_dir={tmp_path}"]
    done = subprocess.run(
        cmd + overrides, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    return sweep_dir


def _trials(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_optuna_sweep_survives_a_failing_trial(tmp_path):
    # The config's seeded TPE sampler (seed 1234, random start-up trials) draws the invalid LR
    # in one of the 3 trials (0.002, 0.001, -1.0 with optuna 2.10).
    sweep_dir = _multirun(
        tmp_path,
        [
            "hparams_search=effnet_hd_optuna",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.params={model.optimizer.lr:'choice(0.001,0.002,-1.0)'}",
        ],
    )
    trials = _trials(sweep_dir)
    assert len(trials) == 3
    failed = [t for t in trials if t["status"] == "failed"]
    ok = [t for t in trials if t["status"] == "ok"]
    assert failed and ok and len(failed) + len(ok) == 3
    assert all("lr=-1.0" in t["overrides"] for t in failed)
    assert all("Invalid learning rate" in t["error"] and t["val/acc"] == "-inf" for t in failed)
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_params"]["model.optimizer.lr"] in (0.001, 0.002)
    assert results["best_value"] == max(float(t["val/acc"]) for t in ok)


@pytest.mark.slow
def test_plain_multirun_runs_every_job_and_lists_it(tmp_path, capsys):
    sweep_dir = _multirun(tmp_path, ["model.optimizer.lr=0.001,-1.0"])
    trials = _trials(sweep_dir)
    assert [t["status"] for t in trials] == ["ok", "failed"]
    assert counted_over(float(trials[0]["val/acc"]), 8)
    final = json.loads(trials[0]["metrics"])
    assert final["val/acc"] == pytest.approx(float(trials[0]["val/acc"]), abs=1e-6)
    assert counted_over(final["test/acc"], 8) and json.loads(trials[1]["metrics"]) == {}
    assert (sweep_dir / "0" / "checkpoints" / "last.ckpt").is_file()
    # Pooled over the two LRs (ignored like seeds): one group, one ok job, one failed.
    assert (
        main(["sweep-summary", str(sweep_dir), "--metric=test/acc", "--ignore=model.optimizer.lr"])
        == 0
    )
    shared, line = capsys.readouterr().out.strip().splitlines()
    assert shared.startswith("all jobs: ") and "lr=" not in shared + line
    assert line.startswith("(no overrides)  [n=1, 1 failed]")
    assert f"test/acc {final['test/acc']:.4f}" in line


def _as_multirun_job(cfg, sweep_dir: Path, num: int = 0):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    with read_write(cfg.hydra), open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(sweep_dir)
        cfg.hydra.job.num = num
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_a_diverging_trial_is_failed_not_the_best(tmp_path):
    from hdvision.cli.train import main as train_main
    from tests.conftest import compose

    cfg = compose("train", [*TINY, "model.optimizer.lr=1e6"], tmp_path)
    value = train_main(_as_multirun_job(cfg, tmp_path))
    assert value == float("-inf")
    (trial,) = _trials(tmp_path)
    assert trial["status"] == "failed" and "FloatingPointError" in trial["error"]
    assert "diverged" in trial["error"]


def test_trial_rows_are_appended_under_a_lock(tmp_path):
    # Parallel launchers append from several processes (on NFS, appends are not atomic).
    import fcntl
    import threading
    import time

    from hdvision.cli.train import _record_trial
    from tests.conftest import compose

    cfg = _as_multirun_job(compose("train", TINY, tmp_path), tmp_path)
    path = tmp_path / "trials.csv"
    with open(path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another job is writing
        writer = threading.Thread(target=_record_trial, args=(cfg, "ok", 0.5))
        writer.start()
        time.sleep(0.5)
        assert path.stat().st_size == 0 and writer.is_alive()
    writer.join(10)
    (trial,) = _trials(tmp_path)
    assert trial["status"] == "ok" and float(trial["val/acc"]) == 0.5
