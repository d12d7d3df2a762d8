"""``hdvision resolution-search``: the argparse side of :mod:`hdvision.tools.resolution_search`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, cast

from hdvision.cli.configs import config_dir


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "resolution-search",
        help="variants of a network's first layers that take a higher resolution at equal "
        "params / FLOPs",
    )
    p.add_argument(
        "--model",
        default="lenet",
        help="a packaged model config (lenet, effnet), a YAML file with a backbone: spec, or a "
        "timm model name (default: lenet)",
    )
    p.add_argument("--from", dest="source", type=int, required=True, help="original input px")
    p.add_argument("--to", dest="target", type=int, required=True, help="target input px")
    p.add_argument("--budget", default="params", help="params | flops | both")
    p.add_argument("--tolerance", type=float, default=0.02, help="relative, default 0.02")
    p.add_argument("--approach", default="I,II,III,IV", help="comma-separated subset")
    p.add_argument("--top", type=int, default=5, help="candidates shown per approach")
    p.add_argument("--write-experiments", metavar="DIR", help="write DIR/experiment/res_*.yaml")
    p.add_argument(
        "--base-experiment", help="for timm models: the experiment the written files extend"
    )


def backbone_spec(model: str) -> dict[str, Any]:
    """The ``model.backbone`` spec of a packaged model config, a YAML file, or a backbone name;
    weights are never loaded (the search counts, it does not train)."""
    import timm
    from omegaconf import DictConfig, OmegaConf

    from hdvision.tools.resolution_search import SearchError

    path = Path(model)
    packaged = config_dir() / "model" / f"{model}.yaml"
    source = path if path.suffix in (".yaml", ".yml") else packaged
    if source.is_file():
        loaded = OmegaConf.load(source)
        backbone = loaded.get("backbone") if isinstance(loaded, DictConfig) else None
        if backbone is None:
            raise SearchError(f"--model {model}: {source} has no backbone: section")
        # Interpolations (img_size: ${data.image_size.0}) are set by the search itself.
        plain = cast(dict[str, Any], OmegaConf.to_container(backbone, resolve=False))
        spec = {k: v for k, v in plain.items() if not (isinstance(v, str) and "${" in v)}
    elif path.suffix in (".yaml", ".yml"):
        raise SearchError(f"--model {model}: no such file")
    else:
        import hdvision.models  # noqa: F401  (registers hdvision_lenet)

        if not timm.is_model(model):
            raise SearchError(
                f"--model {model}: not a packaged model config, a YAML file or a timm model name"
            )
        spec = {"name": model}
    return {**spec, "weights": None}


def run(args: argparse.Namespace) -> int:
    from hdvision.tools.resolution_report import format_results, write_experiments
    from hdvision.tools.resolution_search import search

    backbone = backbone_spec(args.model)
    approaches = [a.strip() for a in args.approach.split(",") if a.strip()]
    original, results = search(
        backbone, args.source, args.target, args.budget, args.tolerance, approaches, args.top
    )
    print(format_results(backbone["name"], args.source, args.target, original, results))
    if not any(isinstance(found, list) for found in results.values()):
        print("no approach has a candidate within the budget", file=sys.stderr)
        return 1
    if args.write_experiments:
        names = write_experiments(
            args.write_experiments,
            backbone,
            args.source,
            args.target,
            results,
            args.base_experiment,
        )
        print(
            f"wrote {len(names)} experiments; train them all:\n  python train.py --config-dir "
            f"{args.write_experiments} -m experiment={','.join(names)} seed=1,2,3"
        )
    return 0


COMMANDS = {"resolution-search": run}
