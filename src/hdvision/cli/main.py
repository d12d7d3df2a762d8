"""The `hdvision` console script: train, eval (Hydra), check-data, bench-data, bench-loader, cost,
sweep-summary, predict, export, quantize, bench-infer, bench-models, prune, resolution-search."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def config_dir() -> Path:
    """``$HDVISION_CONFIG_DIR`` when set, else the configs shipped in the package."""
    from hdvision.cli.entry import CONFIG_DIR

    chosen = os.environ.get("HDVISION_CONFIG_DIR") or CONFIG_DIR
    if not Path(chosen, "train.yaml").is_file():
        raise SystemExit(f"HDVISION_CONFIG_DIR={chosen} holds no train.yaml")
    return Path(chosen).resolve()


def compose(overrides: list[str], config_name: str = "train") -> DictConfig:
    from hdvision.cli.runtime import compose_outside_hydra_main

    os.environ.setdefault("HDVISION_ROOT", os.getcwd())
    return compose_outside_hydra_main(config_dir(), config_name, overrides)


def set_up_datamodule(overrides: list[str]) -> Any:
    """The configured datamodule, its data prepared and every split set up."""
    from hydra.utils import instantiate

    datamodule = instantiate(compose(overrides).data)
    datamodule.prepare_data()
    datamodule.setup()
    return datamodule


def check_data(overrides: list[str]) -> int:
    """Scan every split of the configured data set without training; exit 1 on bad files."""
    from hdvision.tools.check_data import check_splits

    datamodule = set_up_datamodule(overrides + ["data.on_bad_image=skip"])
    return 1 if check_splits(datamodule) else 0


def cost(overrides: list[str], time_steps: int = 0, batch_size: int = 4) -> int:
    import torch
    from hydra.utils import instantiate

    from hdvision.tools.cost import (
        format_cost_report,
        measure_train_step,
        model_cost_report,
        stem_input_size,
    )

    cfg = compose(overrides)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, num_classes=datamodule.num_classes)
    step = None
    if time_steps > 0:
        # Before the report: its batch-2 forward passes would set the process's peak RSS first.
        size = stem_input_size(model, datamodule.sample_size)
        step = measure_train_step(model, size, batch_size, time_steps)
    print(format_cost_report(model_cost_report(model, datamodule.sample_size)))
    if step is not None:
        print(
            f"train step: {step['ms_per_image']:.1f} ms per image, peak memory "
            f"+{step['peak_mb_per_image']:.0f} MB per image (batch {batch_size}, mean of "
            f"{time_steps} steps after a warm-up, {torch.get_num_threads()} threads)"
        )
    return 0


def bench_loader(overrides: list[str], split: str, batches: int) -> int:
    """Time the configured loader alone: is data or the model the bottleneck of a run?"""
    from hdvision.tools.data_pipeline import time_loader

    datamodule = set_up_datamodule(overrides)
    loader = getattr(datamodule, f"{split}_dataloader")()
    result = time_loader(loader, batches)
    size = datamodule.aug_size if split == "train" else datamodule.sample_size
    print(
        f"{split} loader: {result['img_s']:.1f} images/s ({1000 / result['img_s']:.1f} ms per "
        f"image) over {result['images']} images; decode/augment at {size[0]}x{size[1]}, batches "
        f"at {datamodule.sample_size[0]}x{datamodule.sample_size[1]}, "
        f"{datamodule.num_workers} workers, start-up {result['startup_s']:.1f} s"
    )
    return 0


def sweep_summary(sweeps: list[str], metrics: list[str] | None, ignore: list[str]) -> int:
    from hdvision.tools.sweeps import format_summary, read_sweeps, summarize_trials

    optimized, rows = read_sweeps(sweeps)
    metrics = metrics or [optimized]
    print(format_summary(summarize_trials(rows, metrics, ignore), metrics))
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that bad input (a file, a path, a value) raises: one line, no traceback."""
    from hdvision.data.decode import BadImageError
    from hdvision.data.sources import DataSourceError
    from hdvision.inference.export import ParityError
    from hdvision.inference.inputs import InputError
    from hdvision.models.checkpoint import CheckpointError

    return (BadImageError, CheckpointError, DataSourceError, InputError, ParityError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("train", "eval"):
        # Hydra parses the command line itself (overrides, -m, --config-dir, --help); exec, not
        # a child process, so that signals (SLURM's SIGTERM) reach the run.
        module = f"hdvision.cli.hydra_{argv[0]}"
        os.execv(sys.executable, [sys.executable, "-m", module, *argv[1:]])
    from hdvision.cli import infer, resolution

    parser = argparse.ArgumentParser(prog="hdvision", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    infer.add_parsers(sub)
    resolution.add_parser(sub)
    parsers = {}
    for name, helptext in (
        ("check-data", "scan a data set: counts, sizes, modes, bad files"),
        ("cost", "params, FLOPs and training memory of the configured model"),
    ):
        parsers[name] = p = sub.add_parser(name, help=helptext)
        p.add_argument(
            "overrides", nargs="*", help="Hydra overrides, e.g. data=folder data.source.root=DIR"
        )
    loader = parsers["bench-loader"] = sub.add_parser(
        "bench-loader", help="images/s of the configured train/val/test loader alone"
    )
    loader.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=effnet_hd")
    loader.add_argument("--split", choices=("train", "val", "test"), default="train")
    loader.add_argument("--batches", type=int, default=50, help="batches timed after the first")
    parsers["cost"].add_argument(
        "--time-steps", type=int, default=0, help="also time this many training steps"
    )
    parsers["cost"].add_argument("--batch-size", type=int, default=4, help="for --time-steps")
    bench = sub.add_parser("bench-data", help="images/s: naive vs hdvision's data pipeline")
    bench.add_argument("--images", help="folder of JPEGs (default: generate realistic test JPEGs)")
    bench.add_argument("--size", default="1080x1920", help="full-resolution HxW")
    bench.add_argument("--aug-scale", type=float, default=0.25)
    bench.add_argument("--workers", type=int, default=2)
    bench.add_argument("--limit", type=int, default=64, help="images per pipeline")
    bench.add_argument("--json", help="also write the numbers here")
    summary = sub.add_parser("sweep-summary", help="mean ± std of multiruns' metrics over seeds")
    summary.add_argument(
        "sweeps", nargs="+", help="multirun folders (or their trials.csv), jobs pooled"
    )
    summary.add_argument(
        "--metric", action="append", help="metric to average (repeatable; default: optimized)"
    )
    summary.add_argument(
        "--ignore", action="append", default=None, help="override keys to pool over (default: seed)"
    )
    args = parser.parse_args(argv)
    if args.command in infer.COMMANDS:
        try:
            return infer.COMMANDS[args.command](args)
        except _user_errors() as err:
            print(f"hdvision {args.command}: error: {err}", file=sys.stderr)
            return 2
    if args.command == "resolution-search":
        return resolution.run(args)
    if args.command == "sweep-summary":
        return sweep_summary(args.sweeps, args.metric, args.ignore or ["seed"])
    if args.command == "check-data":
        return check_data(args.overrides)
    if args.command == "bench-loader":
        return bench_loader(args.overrides, args.split, args.batches)
    if args.command == "cost":
        return cost(args.overrides, args.time_steps, args.batch_size)
    from hdvision.tools.data_pipeline import run_benchmark

    height, width = (int(v) for v in args.size.lower().split("x"))
    result = run_benchmark(args.images, (height, width), args.aug_scale, args.workers, args.limit)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
