"""Table of the Megapixel MNIST study (scripts/mpmnist_study.sh; also scripts/photo_study.sh's
with --prefix photo_hd --variants zoom,prior_only,area): per variant, mean ± std over
seeds of val / test accuracy (each run tested at its best validation epoch), the training steps
done within the budget, the images they saw, and the run's wall time (training, validation, test).
With --curve, each run's validation accuracy after every epoch follows the table.

    python scripts/mpmnist_summary.py logs/mpmnist_study [--curve]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

from hdvision.tools.sweeps import read_sweeps, summarize_trials

VARIANTS = ("area", "space_to_depth", "zoom", "zoom_from_half", "patch_select")
METRICS = ("val/acc", "test/acc")


def _format(mean: float, std: float, n: int, digits: int = 1) -> str:
    """'mean ± std', or the mean alone for one seed (no spread to show)."""
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _mean_std(values: list[float], digits: int = 1) -> str:
    if not values:
        return "—"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return _format(statistics.mean(values), std, len(values), digits)


def _logged_rows(run: Path) -> list[dict[str, str]]:
    """The rows of the run's CSV logger, every version in order."""
    rows: list[dict[str, str]] = []
    for metrics in sorted(run.glob("0/csv/version_*/metrics.csv")):
        with metrics.open(newline="") as f:
            rows += csv.DictReader(f)
    return rows


def _val_curve(rows: list[dict[str, str]]) -> str:
    """'epoch: val acc %' after every validation of a run."""
    points = [
        f"{int(row['epoch']) + 1}: {100 * float(row['val/acc']):.1f}"
        for row in rows
        if row.get("val/acc")
    ]
    return ", ".join(points) or "no validation yet"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="logs/mpmnist_study")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prefix", default="mpmnist", help="experiment names: <prefix>_<variant>")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--curve", action="store_true", help="val acc % after each epoch, per run")
    args = parser.parse_args()
    out = Path(args.out)
    if not out.is_dir():
        print(f"{out}: no such folder (the out_dir of scripts/mpmnist_study.sh)", file=sys.stderr)
        return 2
    wall: dict[str, list[float]] = {}
    wall_file = out / "wall_s.csv"
    for line in wall_file.read_text().splitlines() if wall_file.exists() else []:
        variant, _seed, _planned, seconds = line.split(",")
        wall.setdefault(variant, []).append(float(seconds))
    columns = ["variant", "seeds", "val acc %", "test acc %", "steps in budget", "images seen"]
    print("| " + " | ".join([*columns, "run wall s"]) + " |")
    print("|---" * (len(columns) + 1) + "|")
    printed, curves = 0, []
    for variant in args.variants.split(","):
        # A run without trials.csv is still going (or was killed): left out.
        runs = sorted(r for r in out.glob(f"{variant}_[0-9]*") if (r / "trials.csv").is_file())
        if not runs:
            continue
        # The seeds' runs pooled into one group (hdvision's own mean ± sample std over ok jobs).
        _, rows = read_sweeps(runs)
        (acc,) = summarize_trials(rows, METRICS, ignore=("seed",))
        logged = {run: _logged_rows(run) for run in runs}
        # The last training step each run's CSV logger saw.
        steps = [
            max((float(row["step"]) for row in run_rows if row.get("step")), default=0.0)
            for run_rows in logged.values()
        ]
        val, test = (_format(100 * acc[m][0], 100 * acc[m][1], acc["n"]) for m in METRICS)
        print(
            f"| `{args.prefix}_{variant}` | {acc['n']} | {val} | {test} | "
            f"{_mean_std(steps, digits=0)} | {statistics.mean(steps) * args.batch_size:,.0f} | "
            f"{_mean_std(wall.get(variant, []), digits=0)} |"
        )
        printed += 1
        curves += [f"- {run.name}, val acc % after epoch {_val_curve(logged[run])}" for run in runs]
    if not printed:
        print(f"{out}: no finished <variant>_<seed> runs (each has a trials.csv)", file=sys.stderr)
        return 1
    if args.curve:
        print("", *curves, sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
