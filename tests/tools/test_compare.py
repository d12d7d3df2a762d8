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


def test_the_budget_pays_each_phase_at_its_own_step_cost():
    from hdvision.tools.compare import steps_within

    assert steps_within(100.0, 10, [(0, 1.0)]) == 100
    # 2 epochs of 10 steps at 1 s, then 80 s at 4 s per step.
    assert steps_within(100.0, 10, [(0, 1.0), (2, 4.0)]) == 20 + 20
    # The budget ends before the dearer phase starts.
    assert steps_within(15.0, 10, [(0, 1.0), (2, 4.0)]) == 15
    assert steps_within(0.5, 10, [(0, 1.0)]) == 1
