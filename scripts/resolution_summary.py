"""Table and plot of the resolution study (scripts/resolution_study.py): mean ± std test accuracy
per network over seeds (each run tested at its best validation epoch), with its params and FLOPs.

    python scripts/resolution_summary.py logs/resolution_study [--plot docs/resolution_accuracy.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hdvision.tools.sweeps import read_trials, summarize_trials


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="logs/resolution_study")
    parser.add_argument("--plot", default="docs/resolution_accuracy.png")
    args = parser.parse_args()
    out = Path(args.out)
    runs = json.loads((out / "runs.json").read_text())
    _, rows = read_trials(out / "sweep")
    metrics = ["val/acc", "test/acc"]
    summary = {
        entry["overrides"].split("experiment=")[1].split()[0]: entry
        for entry in summarize_trials(rows, metrics, ignore=("seed",))
    }
    print("| network | px | budget | changes | params | MFLOPs | seeds | val acc | test acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, run in runs.items():
        entry = summary.get(name)
        if entry is None:
            continue
        val, test = entry["val/acc"], entry["test/acc"]
        print(
            f"| {name} | {run['resolution']} | {run['budget'] or '—'} | "
            f"{run.get('changes', 'original')} | {run['params']:,} | {run['flops'] / 1e6:.3f} | "
            f"{entry['n']}{' (' + str(entry['failed']) + ' failed)' if entry['failed'] else ''} | "
            f"{100 * val[0]:.1f} ± {100 * val[1]:.1f} | {100 * test[0]:.1f} ± {100 * test[1]:.1f} |"
        )
    plot(runs, summary, Path(args.plot))
    return 0


def plot(runs: dict, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    markers = {"I": "s", "II": "^", "III": "D", "IV": "v"}
    colours = {"I": "C0", "II": "C1", "III": "C2", "IV": "C3"}
    names = {"params": "params", "flops": "FLOPs"}
    for ax, budget in zip(axes, ("params", "flops"), strict=True):
        originals = sorted(
            (run["resolution"], summary[name]["test/acc"])
            for name, run in runs.items()
            if run["approach"] == "original" and name in summary
        )
        xs = [r for r, _ in originals]
        ax.errorbar(
            xs,
            [100 * m for _, (m, _) in originals],
            [100 * s for _, (_, s) in originals],
            marker="o",
            color="black",
            capsize=3,
            label="original network (params and FLOPs grow)",
        )
        for name, run in runs.items():
            if run["approach"] == "original" or name not in summary:
                continue
            if run["budget"] not in (budget, "both"):
                continue
            mean, std = summary[name]["test/acc"]
            ax.errorbar(
                [run["resolution"]],
                [100 * mean],
                [100 * std],
                capsize=3,
                marker=markers[run["approach"]],
                color=colours[run["approach"]],
                linestyle="none",
                label=f"{run['approach']} at the 7 px network's {names[budget]}",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("input resolution (px)")
        ax.set_title(f"equal {names[budget]} (the 7 px network's)")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%), mean ± std over seeds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
