"""``hdvision compare`` on a tiny data set: two variants at a budget of a few images, a table, a
plot and a verdict; interrupted, it continues with the runs it had not finished."""

import json

import pytest

from hdvision.cli import compare as compare_cli
from hdvision.cli.main import main
from hdvision.tools.compare import Run, plan_runs, summarize, verdict
from tests.conftest import TINY

SHARED = [o for o in TINY if not o.startswith("trainer.max_epochs")] + [
    "callbacks.val_images=null",
    "callbacks.training_report=null",
    "callbacks.precise_bn=null",
]


def _args(tmp_path, *extra):
    return [
        "compare",
        "experiment=stems_resize",
        *SHARED,
        f"paths.root_dir={tmp_path}",
        "--variants",
        "stems_strided",
        "--images",
        "8",
        "--seeds",
        "1",
        "--out",
        str(tmp_path / "study"),
        *extra,
    ]


@pytest.mark.slow
def test_compare_writes_its_table_and_plot_and_resumes(tmp_path, monkeypatch, capsys):
    real_run = compare_cli.run_one
    started = []

    def interrupted_after_the_first(run, overrides, plan):
        started.append(run.name)
        if len(started) == 2:
            raise KeyboardInterrupt
        return real_run(run, overrides, plan)

    monkeypatch.setattr(compare_cli, "run_one", interrupted_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        main(_args(tmp_path))
    study = tmp_path / "study"
    first = Run("stems_resize", 1, study / "stems_resize_s1")
    assert first.state() == "done" and not (study / "compare.md").exists()
    done_at = (first.dir / "run.json").stat().st_mtime

    monkeypatch.setattr(compare_cli, "run_one", real_run)
    assert main(_args(tmp_path)) == 0
    assert (first.dir / "run.json").stat().st_mtime == done_at  # not trained again
    record = json.loads((study / "stems_strided_s1" / "run.json").read_text())
    assert record["returncode"] == 0 and record["max_steps"] == 2 and record["peak_rss_mb"] > 0
    table = (study / "compare.md").read_text()
    assert (
        "`stems_resize`" in table and "`stems_strided`" in table and "wins on validation" in table
    )
    assert (study / "curves.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "images seen" in out and "| 8 |" in out  # 2 steps of 4 images per run


def test_unknown_variants_and_budgets_get_one_line(tmp_path, capsys):
    args = _args(tmp_path)
    args[args.index("stems_strided")] = "stems_stridd"
    assert main(args) == 2
    assert "no experiment 'stems_stridd'; closest: stems_strided" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["compare", "experiment=stems_resize", "--minutes", "0"])
    assert stop.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


def test_verdict_says_when_the_seeds_do_not_separate_the_variants(tmp_path):
    def result(variant, seed, val, test):
        return {
            "variant": variant,
            "seed": seed,
            "val": val,
            "test": test,
            "images": 100.0,
            "minutes": 1.0,
            "ms_per_image": 600.0,
            "peak_mb": 1.0,
            "wall_s": 60.0,
        }

    close = summarize(
        [result("a", s, 0.9, t) for s, t in ((1, 0.90), (2, 0.92), (3, 0.88))]
        + [result("b", s, 0.8, t) for s, t in ((1, 0.89), (2, 0.91), (3, 0.87))]
    )
    assert "a wins on validation" in verdict(close) and "do not separate" in verdict(close)
    apart = summarize(
        [result("a", s, 0.9, t) for s, t in ((1, 0.90), (2, 0.91), (3, 0.92))]
        + [result("b", s, 0.8, t) for s, t in ((1, 0.60), (2, 0.61), (3, 0.62))]
    )
    assert "more than twice" in verdict(apart)
    runs = plan_runs(tmp_path, ["a", "b"], [1, 2])
    assert [r.name for r in runs] == ["a_s1", "b_s1", "a_s2", "b_s2"]


def test_a_study_grows_by_seeds_but_refuses_another_budget(tmp_path):
    plans = {"budget": {"minutes": None, "images": 8, "seeds": 1}, "overrides": ["seed=1"]}
    same = {"minutes": None, "images": 8}
    compare_cli.check_same_study(plans, same, ["seed=1"], tmp_path)  # --seeds 3 later: allowed
    with pytest.raises(compare_cli.CompareError, match="another budget"):
        compare_cli.check_same_study(plans, {"minutes": None, "images": 16}, ["seed=1"], tmp_path)
    with pytest.raises(compare_cli.CompareError, match="another budget or overrides"):
        compare_cli.check_same_study(plans, same, ["seed=2"], tmp_path)


def test_the_budget_pays_each_phase_at_its_own_step_cost_and_each_validation():
    from hdvision.tools.compare import epochs_within

    # 10 epochs of 10 steps at 1 s fill 100 s; one step alone fits a budget that nothing else does.
    assert epochs_within(100.0, 10, [(0, 1.0, 0.0)]) == (10, 10)
    assert epochs_within(0.5, 10, [(0, 1.0, 0.0)]) == (1, 1)
    # 2 epochs of 10 steps at 1 s, then 80 s at 4 s per step: 2 more epochs of 10.
    assert epochs_within(100.0, 10, [(0, 1.0, 0.0), (2, 4.0, 0.0)]) == (4, 10)
    # The budget ends before the dearer phase starts: 15 steps in 2 epochs of 7.
    assert epochs_within(15.0, 10, [(0, 1.0, 0.0), (2, 4.0, 0.0)]) == (2, 7)
    # A validation of 10 s after each epoch: 5 epochs of 10 steps (5 x 20 s), not 10.
    assert epochs_within(100.0, 10, [(0, 1.0, 10.0)]) == (5, 10)
    # 105 s: the sixth epoch's 10 s of validation leave room for 5 x 6 + 9 steps at most, so
    # six epochs of 9 steps (54 s + 60 s > 105 s) do not fit and five epochs of 10 stay best.
    assert epochs_within(105.0, 10, [(0, 1.0, 10.0)]) == (5, 10)
    # 130 s: 6 epochs of 10 steps and 10 s (120 s), and a seventh does not fit whole.
    steps_s = 6 * 10 * 1.0 + 6 * 10.0
    assert steps_s <= 130 and epochs_within(130.0, 10, [(0, 1.0, 10.0)]) == (6, 10)


@pytest.mark.slow
def test_a_minutes_budget_times_training_and_validation_and_fits_them(tmp_path):
    from hdvision.cli.compare_plan import MARGIN, schedule
    from tests.conftest import compose

    cfg = compose("train", [*SHARED, "experiment=stems_resize"], tmp_path)
    plan = schedule(cfg, 0.05, None)
    ((start, step_s),) = plan["step_s_phases"]
    ((_, epoch_s),) = plan["epoch_s_phases"]
    assert start == 0 and step_s > 0 and epoch_s > 0  # the validation set is timed too
    used = plan["max_steps"] * step_s + plan["max_epochs"] * epoch_s
    assert used <= 0.05 * 60 * (1 - MARGIN)
    assert plan["max_time"] == "00:00:00:03"
