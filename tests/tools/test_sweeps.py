import csv
import json
import math

import pytest

from hdvision.cli.main import main
from hdvision.errors import UserError
from hdvision.tools.sweeps import read_trials, summarize_trials


def _write_trials(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["job", "status", "val/acc", "overrides", "error", "metrics"])
        for job, (status, overrides, metrics) in enumerate(rows):
            value = metrics.get("val/acc", "-inf")
            writer.writerow([job, status, value, overrides, "", json.dumps(metrics)])


ROWS = [
    ("ok", "model/stem=resize seed=1 trainer.max_epochs=2", {"val/acc": 0.5, "test/acc": 0.4}),
    ("ok", "model/stem=resize seed=2 trainer.max_epochs=2", {"val/acc": 0.7, "test/acc": 0.6}),
    ("ok", "model/stem=strided seed=1 trainer.max_epochs=2", {"val/acc": 0.9, "test/acc": 0.8}),
    ("failed", "model/stem=strided seed=2 trainer.max_epochs=2", {}),
]


def test_summary_pools_seeds_and_counts_failures(tmp_path):
    _write_trials(tmp_path / "trials.csv", ROWS)
    optimized, rows = read_trials(tmp_path)
    assert optimized == "val/acc"
    resize, strided = summarize_trials(rows, ["val/acc", "test/acc"])
    assert resize["overrides"] == "model/stem=resize trainer.max_epochs=2" and resize["n"] == 2
    assert resize["val/acc"][0] == pytest.approx(0.6)
    assert resize["val/acc"][1] == pytest.approx(0.1414, abs=1e-4)  # sample std
    assert resize["test/acc"][0] == pytest.approx(0.5)
    assert strided["n"] == 1 and strided["failed"] == 1
    assert strided["val/acc"][0] == 0.9 and math.isnan(strided["val/acc"][1])


def test_sweep_summary_command_prints_each_group(tmp_path, capsys):
    _write_trials(tmp_path / "trials.csv", ROWS)
    assert main(["sweep-summary", str(tmp_path), "--metric", "test/acc"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "all jobs: trainer.max_epochs=2"  # said once, not on every line
    assert out[1].startswith("model/stem=resize  [n=2]  test/acc 0.5000 ± 0.1414")
    assert out[2].startswith("model/stem=strided  [n=1, 1 failed]")


def test_summary_pools_several_sweeps_whatever_the_override_order(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write_trials(tmp_path / "a" / "trials.csv", ROWS[:1])
    later = [("ok", "seed=3 trainer.max_epochs=2 model/stem=resize", {"val/acc": 0.9})]
    _write_trials(tmp_path / "b" / "trials.csv", later)
    assert main(["sweep-summary", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "all jobs: model/stem=resize trainer.max_epochs=2",
        "(no overrides)  [n=2]  val/acc 0.7000 ± 0.2828",
    ]


def test_missing_trials_file_names_the_folder(tmp_path):
    with pytest.raises(UserError, match=str(tmp_path)):
        read_trials(tmp_path)


def test_ok_rows_with_non_finite_metrics_are_counted_not_averaged(tmp_path, capsys):
    # Diverged trials recorded `ok` by older runs (issue 22): statistics.stdev crashed on NaN.
    rows = [
        *ROWS[:2],
        ("ok", "model/stem=resize seed=3 trainer.max_epochs=2", {"val/acc": math.nan}),
        (
            "ok",
            "model/stem=resize seed=4 trainer.max_epochs=2",
            {"val/acc": 0.6, "test/acc": math.inf},
        ),
    ]
    _write_trials(tmp_path / "trials.csv", rows)
    _, parsed = read_trials(tmp_path)
    (resize,) = summarize_trials(parsed, ["val/acc", "test/acc"])
    assert (resize["n"], resize["failed"], resize["non_finite"]) == (2, 0, 2)
    assert resize["val/acc"][0] == pytest.approx(0.6)
    assert main(["sweep-summary", str(tmp_path)]) == 0
    assert "2 non-finite" in capsys.readouterr().out
