"""The `hdvision` console script: train, eval (Hydra), check-data, shard, cost, bench-data,
bench-loader, sweep-summary, compare, predict, export, quantize, bench-infer, bench-models, prune,
qat, resolution-search."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from hdvision.cli.errors import OneLineParser, report, user_errors

HYDRA_COMMANDS = ("train", "eval")


# Which module of hdvision.cli defines each argparse command. Parsing a known command imports only
# its module: `hdvision sweep-summary` does not wait for torch, timm and Lightning to import.
MODULE_OF = {
    "check-data": "tools",
    "shard": "tools",
    "cost": "tools",
    "bench-data": "tools",
    "bench-loader": "tools",
    "sweep-summary": "tools",
    "predict": "infer",
    "export": "infer",
    "quantize": "infer",
    "bench-infer": "infer",
    "bench-models": "infer",
    "prune": "compress",
    "qat": "compress",
    "resolution-search": "resolution",
    "compare": "compare",
}


def build_parser(
    command: str | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, Callable[..., int]]]:
    """The argparse parser (of ``command``'s module alone when it is known, else of every
    command) and the function that runs each command it knows."""
    parser = OneLineParser(prog="hdvision", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    names = (
        [MODULE_OF[command]] if command in MODULE_OF else list(dict.fromkeys(MODULE_OF.values()))
    )
    commands: dict[str, Callable[..., int]] = {}
    for name in names:
        module = importlib.import_module(f"hdvision.cli.{name}")
        module.add_parsers(sub)
        commands.update(module.COMMANDS)
    return parser, commands


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in HYDRA_COMMANDS:
        # Hydra parses the command line itself (overrides, -m, --config-dir, --help); exec, not
        # a child process, so that signals (SLURM's SIGTERM) reach the run.
        module = f"hdvision.cli.hydra_{argv[0]}"
        os.execv(sys.executable, [sys.executable, "-m", module, *argv[1:]])
    parser, commands = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except user_errors() as err:
        return report(args.command, err)


if __name__ == "__main__":
    sys.exit(main())
