"""The bookkeeping of ``hdvision compare``: which runs a study has, which are done, what they
measured, and the study's table, learning curves and verdict. The runs themselves are started by
the command (:mod:`hdvision.cli.compare`); everything here reads and writes plain files.

A study folder holds one folder per run (``<variant>_s<seed>``: a Hydra multirun folder with its
``trials.csv``, job ``0/`` with its CSV metrics and checkpoints, and ``run.json`` written by the
command: wall time, peak memory, planned steps), ``plan.json`` (the budget and each variant's
schedule), and the results: ``compare.md`` and ``curves.png``.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hdvision.tools.sweeps import read_trials


@dataclass(frozen=True)
class Run:
    variant: str
    seed: int
    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def job(self) -> Path:
        return self.dir / "0"

    def state(self) -> str:
        """``done`` (its trials.csv holds an ok row), ``partial`` (stopped after a checkpoint:
        resumable from ``last.ckpt``) or ``new``."""
        trials = self.dir / "trials.csv"
        if trials.is_file() and any(r["status"] == "ok" for r in read_trials(trials)[1]):
            return "done"
        return "partial" if self.last_checkpoint().is_file() else "new"

    def last_checkpoint(self) -> Path:
        return self.job / "checkpoints" / "last.ckpt"


def plan_runs(out: str | Path, variants: Sequence[str], seeds: Sequence[int]) -> list[Run]:
    """Seed by seed, every variant: an interrupted study has the same seeds of every variant."""
    return [Run(v, s, Path(out) / f"{v}_s{s}") for s in seeds for v in variants]


def epochs_within(
    budget_s: float, per_epoch: int, phases: Sequence[tuple[int, float, float]]
) -> tuple[int, int]:
    """``(epochs, batches per epoch)`` with the most training steps whose time fits ``budget_s``
    seconds. From epoch ``phases[i][0]`` on (the first phase starts at epoch 0; a callback such as
    :class:`~hdvision.callbacks.WindowSchedule` adds the later ones) a step costs ``phases[i][1]``
    seconds and each epoch ``phases[i][2]`` more (its validation). Epochs are of equal length, at
    most ``per_epoch`` batches; the search stops at the first count that cannot fill its epochs,
    since more, shorter epochs only pay more validations for about the same steps."""

    def phase(epoch: int) -> tuple[int, float, float]:
        return max((p for p in phases if p[0] <= epoch), key=lambda p: p[0])

    best, epochs, step_s, extra_s = (1, 1), 0, 0.0, 0.0
    while True:
        _, step, extra = phase(epochs)
        epochs, step_s, extra_s = epochs + 1, step_s + step, extra_s + extra
        batches = min(per_epoch, int((budget_s - extra_s) // step_s))
        if batches < 1:
            return best
        if epochs * batches > best[0] * best[1]:
            best = (epochs, batches)
        if batches < per_epoch:
            return best


def _float(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def read_curve(run: Run, metric: str = "val/acc") -> list[dict[str, float]]:
    """The run's ``metric`` after each validation with the minutes of training and images seen
    by then (the :class:`~hdvision.callbacks.ElapsedTime` columns), in step order."""
    by_step: dict[int, dict[str, float]] = {}
    for path in sorted(run.job.glob("csv/version_*/metrics.csv")):
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                step = _float(row.get("step"))
                if step is None:
                    continue
                point = by_step.setdefault(int(step), {"step": step})
                for key, name in ((metric, "value"), ("time/train_minutes", "minutes")):
                    value = _float(row.get(key))
                    if value is not None:
                        point[name] = value
                images = _float(row.get("time/images"))
                if images is not None:
                    point["images"] = images
    return [p for _, p in sorted(by_step.items()) if "value" in p and "minutes" in p]


def read_run(run: Run, metric: str = "val/acc", test_metric: str = "test/acc") -> dict[str, Any]:
    """What one finished run measured: the best validation value (the checkpoint selection),
    the test value at that checkpoint, images seen, training minutes, ms per training image,
    peak memory and wall time."""
    _, rows = read_trials(run.dir)
    final = next(r["metrics"] for r in rows if r["status"] == "ok")
    info = (
        json.loads((run.dir / "run.json").read_text()) if (run.dir / "run.json").is_file() else {}
    )
    curve = read_curve(run, metric)
    last = curve[-1] if curve else {}
    images = last.get("images", math.nan)
    minutes = last.get("minutes", math.nan)
    return {
        "variant": run.variant,
        "seed": run.seed,
        "val": max((p["value"] for p in curve), default=final.get(metric, math.nan)),
        "test": final.get(test_metric, math.nan),
        "images": images,
        "minutes": minutes,
        "ms_per_image": minutes * 60_000 / images if images else math.nan,
        "peak_mb": info.get("peak_rss_mb", math.nan),
        "wall_s": info.get("wall_s", math.nan),
        "curve": curve,
    }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def summarize(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant (in first-seen order): the number of seeds and (mean, std) of every measure."""
    variants: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        variants.setdefault(r["variant"], []).append(r)
    keys = ("val", "test", "images", "minutes", "ms_per_image", "peak_mb", "wall_s")
    return [
        {"variant": v, "n": len(rs), **{k: _mean_std([r[k] for r in rs]) for k in keys}}
        for v, rs in variants.items()
    ]


def verdict(summary: Sequence[dict[str, Any]]) -> str:
    """Which variant wins (selected on validation), by how much on test, and whether the seeds
    separate it from the runner-up (the difference of means against twice its standard error)."""
    ranked = sorted((s for s in summary if math.isfinite(s["val"][0])), key=lambda s: -s["val"][0])
    if not ranked:
        return "no variant finished a run"
    best = ranked[0]
    if len(ranked) == 1:
        return f"{best['variant']}: the only variant with results"
    second = ranked[1]
    diff = best["test"][0] - second["test"][0]
    spread = math.sqrt(
        sum(
            (s["test"][1] ** 2 / s["n"]) if math.isfinite(s["test"][1]) else math.inf
            for s in (best, second)
        )
    )
    line = (
        f"{best['variant']} wins on validation ({100 * best['val'][0]:.1f} % vs "
        f"{100 * second['val'][0]:.1f} % for {second['variant']}); on test it is "
        f"{100 * diff:+.1f} points"
    )
    if not math.isfinite(spread):
        return line + "; one seed each cannot say whether the seeds separate them"
    if abs(diff) > 2 * spread:
        return line + f", more than twice the seeds' standard error ({100 * spread:.1f} points)"
    return line + f": the seeds do not separate them (standard error {100 * spread:.1f} points)"


def _cell(value: tuple[float, float], scale: float = 1.0, digits: int = 1) -> str:
    mean, std = value
    if not math.isfinite(mean):
        return "—"
    text = f"{scale * mean:,.{digits}f}"
    return text + (f" ± {scale * std:,.{digits}f}" if math.isfinite(std) else "")


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| variant | seeds | val acc % (best) | test acc % | images seen | train min "
        "| ms / train image | peak MB | run wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| `{s['variant']}` | {s['n']} | {_cell(s['val'], 100)} | {_cell(s['test'], 100)} | "
            f"{_cell(s['images'], digits=0)} | {_cell(s['minutes'])} | "
            f"{_cell(s['ms_per_image'])} | {_cell(s['peak_mb'], digits=0)} | "
            f"{_cell(s['wall_s'], digits=0)} |"
        )
    return "\n".join(lines)


def plot_curves(results: Sequence[dict[str, Any]], path: str | Path, metric: str) -> Path:
    """Validation ``metric`` against minutes of training: one colour per variant, one line per
    seed."""
    from hdvision.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours: dict[str, str] = {}
    for r in results:
        if not r["curve"]:
            continue
        first = r["variant"] not in colours
        colour = colours.setdefault(r["variant"], f"C{len(colours) % 10}")
        ax.plot(
            [p["minutes"] for p in r["curve"]],
            [100 * p["value"] for p in r["curve"]],
            "o-",
            color=colour,
            alpha=0.8,
            markersize=3,
            label=r["variant"] if first else None,
        )
    ax.set_xlabel("minutes of training")
    ax.set_ylabel(f"{metric} %")
    ax.grid(alpha=0.3)
    if colours:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
