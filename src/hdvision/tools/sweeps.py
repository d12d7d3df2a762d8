"""Mean ± std of multiruns' metrics over seeds, from their ``trials.csv`` files."""

from __future__ import annotations

import csv
import fcntl
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hdvision.errors import UserError

# trials.csv, one row per multirun job: its columns, in order. The third column's header is the
# name of the optimized metric (e.g. val/acc), its cells that metric's value; "metrics" holds every
# final metric as JSON.
TRIAL_COLUMNS = ("job", "status", "<optimized metric>", "overrides", "error", "metrics")
_METRIC_COLUMN = 2


def append_trial(
    path: str | Path,
    job: int,
    status: str,
    metric: str,
    value: float | None,
    overrides: str,
    error: str = "",
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Append one job's row to ``path`` (the header first when the file is new). Parallel launchers
    (joblib, SLURM) append from several processes: one locked row at a time."""
    with open(path, "a", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        writer = csv.writer(f)
        if f.seek(0, 2) == 0:  # still empty once locked: this job writes the header
            header = list(TRIAL_COLUMNS)
            header[_METRIC_COLUMN] = metric
            writer.writerow(header)
        final = json.dumps({k: round(v, 6) for k, v in sorted((metrics or {}).items())})
        writer.writerow([job, status, value, overrides, error, final])


def read_trials(path: str | Path) -> tuple[str, list[dict[str, Any]]]:
    """The optimized metric's name and the rows of ``trials.csv`` (a file or a sweep folder),
    each with its final metrics parsed into ``row["metrics"]``."""
    path = Path(path)
    if path.is_dir():
        path = path / "trials.csv"
    if not path.is_file():
        raise UserError(f"{path}: no trials.csv; pass a multirun folder (train.py -m ...)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        # Files of earlier versions may lack the later columns (error, metrics).
        if columns[:_METRIC_COLUMN] != list(TRIAL_COLUMNS[:_METRIC_COLUMN]) or not {
            "overrides"
        } <= set(columns):
            raise UserError(f"{path}: not a trials.csv of hdvision (columns: {columns})")
        optimized = columns[_METRIC_COLUMN]
        rows: list[dict[str, Any]] = list(reader)
    for row in rows:
        row["metrics"] = json.loads(row.get("metrics") or "{}")
        if row["status"] == "ok" and optimized not in row["metrics"]:
            row["metrics"][optimized] = float(row[optimized])
    return optimized, rows


def read_sweeps(paths: Sequence[str | Path]) -> tuple[str, list[dict[str, Any]]]:
    """:func:`read_trials` of several sweeps (e.g. more seeds run later), rows pooled; the
    optimized metric is the first sweep's."""
    if not paths:
        raise UserError("no sweep folders given")
    results = [read_trials(path) for path in paths]
    return results[0][0], [row for _, rows in results for row in rows]


def _without(overrides: str, ignore: Iterable[str]) -> str:
    # Sorted: `seed=1,2 experiment=a,b` and `experiment=a seed=3` are the same group.
    keys = tuple(f"{k}=" for k in ignore)
    return " ".join(sorted(o for o in overrides.split() if not o.lstrip("+~").startswith(keys)))


def summarize_trials(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str], ignore: Sequence[str] = ("seed",)
) -> list[dict[str, Any]]:
    """Group rows by their overrides minus the ``ignore`` keys (in first-seen order); per group the
    number of ok and failed jobs and (mean, sample std) of each metric over the ok jobs. An ``ok``
    row with a NaN or infinite metric (a diverged trial recorded before such trials were marked
    failed) is counted as ``non_finite`` and left out of the statistics."""
    logged = {name for row in rows for name in row["metrics"]}
    unknown = [m for m in metrics if m not in logged]
    if unknown and logged:
        raise UserError(
            f"--metric {unknown[0]}: not logged by these runs; logged: {sorted(logged)}"
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_without(row["overrides"], ignore), []).append(row)
    summary = []
    for overrides, members in groups.items():
        done = [r for r in members if r["status"] == "ok"]
        ok = [r for r in done if all(math.isfinite(v) for v in r["metrics"].values())]
        entry: dict[str, Any] = {
            "overrides": overrides,
            "n": len(ok),
            "failed": len(members) - len(done),
            "non_finite": len(done) - len(ok),
        }
        for name in metrics:
            values = [r["metrics"][name] for r in ok if name in r["metrics"]]
            mean = statistics.fmean(values) if values else math.nan
            std = statistics.stdev(values) if len(values) > 1 else math.nan
            entry[name] = (mean, std)
        summary.append(entry)
    return summary


def format_summary(summary: Sequence[dict[str, Any]], metrics: Sequence[str]) -> str:
    """One line per group, naming only the overrides that differ between groups."""
    tokens = [entry["overrides"].split() for entry in summary]
    shared = set.intersection(*map(set, tokens)) if tokens else set()
    lines = [f"all jobs: {' '.join(t for t in tokens[0] if t in shared)}"] if shared else []
    for entry, own in zip(summary, tokens, strict=True):
        name = " ".join(t for t in own if t not in shared) or "(no overrides)"
        cells = [f"{metric} {entry[metric][0]:.4f} ± {entry[metric][1]:.4f}" for metric in metrics]
        failed = f", {entry['failed']} failed" if entry["failed"] else ""
        failed += f", {entry['non_finite']} non-finite" if entry["non_finite"] else ""
        lines.append(f"{name}  [n={entry['n']}{failed}]  " + "  ".join(cells))
    return "\n".join(lines)
