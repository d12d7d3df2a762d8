"""``hdvision compare``: which recipe (resolution, stem, model) for these images? Each variant is
trained for the same budget, seeds one after another, one run at a time; then one table, one
learning-curve plot and a verdict (the study's bookkeeping: :mod:`hdvision.tools.compare`).

    hdvision compare experiment=effnet_hd --variants stems_resize,stems_space_to_depth \\
        --minutes 15 --seeds 3 [data=folder data.source.root=DIR ...] [--out DIR]

``experiment=<base>`` is the reference variant; ``--variants`` are further experiments; every
other override applies to every run. ``--minutes``: each run trains that long
(``trainer.max_time``) with its learning-rate schedule sized to the steps that fit, from its
measured step time; ``--images``: each run sees that many training images, whatever the time.
Run again with the same arguments, it continues where it stopped.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hdvision.cli.args import positive, positive_float
from hdvision.cli.compare_plan import budget_overrides, schedule
from hdvision.cli.configs import compose, config_dir
from hdvision.data.listing import DataSourceError
from hdvision.tools.compare import (
    Run,
    format_table,
    plan_runs,
    plot_curves,
    read_run,
    summarize,
    verdict,
)


class CompareError(DataSourceError):
    """A study that cannot run as asked; the message names the value and the fix."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="train variants at an equal budget over seeds: table, curves, verdict"
    )
    p.add_argument("overrides", nargs="*", help="experiment=<base> and overrides for every run")
    p.add_argument("--variants", default="", help="comma-separated experiments to compare")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=positive_float, help="training minutes per run")
    budget.add_argument("--images", type=positive, help="training images per run")
    p.add_argument("--seeds", type=positive, default=3, help="seeds 1..N (default 3)")
    p.add_argument("--out", help="study folder (default: logs/compare/<variants>)")
    p.add_argument("--metric", default="val/acc", help="the selection metric (default val/acc)")


def _experiments() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))


def check_variants(names: list[str]) -> None:
    known = _experiments()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; closest: {', '.join(close)}" if close else f"; experiments: {known}"
            raise CompareError(f"--variants: no experiment {name!r}{hint}")


def check_data(cfgs: dict[str, Any], out: Path) -> None:
    """Scan each distinct data config once (``hdvision check-data``); refuse bad data."""
    from omegaconf import OmegaConf

    from hdvision.cli.configs import set_up_datamodule
    from hdvision.tools.check_data import check_splits

    seen: set[str] = set()
    for variant, (cfg, overrides) in cfgs.items():
        key = OmegaConf.to_yaml(cfg.data, resolve=True)
        if key in seen:
            continue
        seen.add(key)
        report = out / f"check_data_{variant}.txt"
        if report.is_file() and report.read_text().startswith("ok"):
            continue
        datamodule = set_up_datamodule([*overrides, "data.on_bad_image=skip"])
        bad = check_splits(datamodule)
        if bad:
            report.write_text("bad\n" + "\n".join(bad) + "\n")
            raise CompareError(
                f"the data of {variant} fails check-data: {len(bad)} bad files, e.g. {bad[0]} "
                f"(all in {report}); fix them or point the study at other data"
            )
        report.write_text("ok\n")


def _peak_rss_mb(usage: Any) -> float:
    return usage.ru_maxrss / 1024  # KiB on Linux


def run_one(run: Run, overrides: list[str], plan: dict[str, Any]) -> int:
    """Train one run in its own process (resuming it from ``last.ckpt`` when it was stopped);
    its wall time and peak memory go to ``run.json``."""
    run.dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "hdvision.cli.hydra_train",
        "-m",
        f"experiment={run.variant}",
        f"seed={run.seed}",
        *overrides,
        *budget_overrides(plan),
        f"hydra.sweep.dir={run.dir}",
        "callbacks.rich_progress_bar=null",
    ]
    if run.state() == "partial":
        command.append(f"ckpt_path={run.last_checkpoint()}")
    start = time.perf_counter()
    with open(run.dir / "stdout.log", "a") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except KeyboardInterrupt:
            child.send_signal(signal.SIGTERM)  # saves last.ckpt: the next call resumes it
            child.wait()
            raise
    code = os.waitstatus_to_exitcode(status)
    record = {"variant": run.variant, "seed": run.seed, "returncode": code, **plan}
    record.update(wall_s=time.perf_counter() - start, peak_rss_mb=_peak_rss_mb(usage))
    (run.dir / "run.json").write_text(json.dumps(record, indent=2))
    return code


def check_same_study(plans: dict[str, Any], budget: dict, shared: list[str], out: Path) -> None:
    """A study folder continues only under the budget and overrides it was planned with. Seeds
    are left out: more seeds later extend the same study and keep the runs already done."""
    recorded = {k: v for k, v in plans.get("budget", {}).items() if k != "seeds"}
    if plans and (recorded != budget or plans.get("overrides") != shared):
        raise CompareError(
            f"{out} holds a study with another budget or overrides ({plans.get('budget')}, "
            f"{plans.get('overrides')}); pass another --out"
        )


def compare(args: argparse.Namespace) -> int:
    base = [o for o in args.overrides if o.startswith("experiment=")]
    shared = [o for o in args.overrides if not o.startswith("experiment=")]
    variants = [o.split("=", 1)[1] for o in base] + [
        v.strip() for v in args.variants.split(",") if v.strip()
    ]
    if not variants:
        raise CompareError("no variants: give experiment=<base> and/or --variants a,b")
    if len(set(variants)) != len(variants):
        raise CompareError(f"--variants: a variant is named twice in {variants}")
    check_variants(variants)
    out = Path(args.out or Path("logs", "compare", "_".join(variants)))
    out.mkdir(parents=True, exist_ok=True)
    budget = {"minutes": args.minutes, "images": args.images}
    plan_file = out / "plan.json"
    plans: dict[str, Any] = json.loads(plan_file.read_text()) if plan_file.is_file() else {}
    check_same_study(plans, budget, shared, out)
    cfgs = {
        v: (compose([f"experiment={v}", *shared]), [f"experiment={v}", *shared]) for v in variants
    }
    check_data(cfgs, out)
    for variant, (cfg, _) in cfgs.items():
        if variant not in plans.get("variants", {}):
            plans.setdefault("variants", {})[variant] = schedule(cfg, args.minutes, args.images)
            plan_file.write_text(
                json.dumps({**plans, "budget": budget, "overrides": shared}, indent=2)
            )
    runs = plan_runs(out, variants, range(1, args.seeds + 1))
    for n, run in enumerate(runs, start=1):
        state = run.state()
        if state == "done":
            continue
        print(f"[{n}/{len(runs)}] {run.name} ({'resumed' if state == 'partial' else 'new'})")
        code = run_one(run, shared, plans["variants"][run.variant])
        if code != 0:
            print(f"  {run.name} failed (exit {code}); see {run.dir / 'stdout.log'}")
    results = [read_run(r, args.metric) for r in runs if r.state() == "done"]
    summary = summarize(results)
    table, decided = format_table(summary), verdict(summary)
    plot_curves(results, out / "curves.png", args.metric)
    variants_arg = [f"--variants {args.variants}"] if args.variants.strip() else []
    command = " ".join(["hdvision compare", *args.overrides, *variants_arg])
    unit = f"--minutes {args.minutes:g}" if args.minutes else f"--images {args.images}"
    (out / "compare.md").write_text(
        f"```bash\n{command} {unit} --seeds {args.seeds}\n```\n\n{table}\n\n{decided}\n\n"
        "![learning curves](curves.png)\n"
    )
    print(f"{table}\n\n{decided}\n\ntable: {out / 'compare.md'}, curves: {out / 'curves.png'}")
    return 0 if len(results) == len(runs) else 1


COMMANDS = {"compare": compare}
