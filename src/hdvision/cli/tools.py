"""Data and models, without training: ``hdvision check-data | shard | cost | bench-data |
bench-loader | sweep-summary`` (argparse; the work is in :mod:`hdvision.tools` and
:mod:`hdvision.models.cost`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hdvision.cli.args import (
    byte_size,
    image_size,
    non_negative,
    output_file,
    positive,
    unit_fraction,
)
from hdvision.cli.configs import compose, set_up_datamodule
from hdvision.data.listing import SPLITS

OVERRIDES_HELP = "Hydra overrides, e.g. data=folder data.source.root=DIR"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("check-data", help="scan a data set: counts, sizes, modes, bad files")
    check.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)

    shard = sub.add_parser(
        "shard", help="write the configured data set as shards (data=shards streams them)"
    )
    shard.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    shard.add_argument("--out", required=True, help="folder to write (then copy it to a bucket)")
    shard.add_argument(
        "--shard-size", type=byte_size, default="256MB", help="bytes per shard (default 256MB)"
    )

    cost = sub.add_parser("cost", help="params, FLOPs and training memory of the configured model")
    cost.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    cost.add_argument("--time-steps", type=positive, help="also time this many training steps")
    cost.add_argument("--batch-size", type=positive, default=4, help="for --time-steps")

    loader = sub.add_parser(
        "bench-loader", help="images/s of the configured train/val/test loader alone"
    )
    loader.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    loader.add_argument("--split", choices=SPLITS, default="train")
    loader.add_argument(
        "--batches", type=positive, default=50, help="batches timed after the first"
    )

    bench = sub.add_parser("bench-data", help="images/s: naive vs hdvision's data pipeline")
    bench.add_argument("--images", help="folder of JPEGs (default: generate realistic test JPEGs)")
    bench.add_argument("--size", type=image_size, default="1080x1920", help="full-resolution HxW")
    bench.add_argument("--aug-scale", type=unit_fraction, default=0.25)
    bench.add_argument("--workers", type=non_negative, default=2)
    bench.add_argument("--limit", type=positive, default=64, help="images per pipeline")
    bench.add_argument("--json", type=output_file, help="also write the numbers here")

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


def check_data(args: argparse.Namespace) -> int:
    """Scan every split of the configured data set without training; exit 1 on bad files."""
    from hdvision.tools.check_data import check_splits

    datamodule = set_up_datamodule(args.overrides + ["data.on_bad_image=skip"])
    return 1 if check_splits(datamodule) else 0


def shard(args: argparse.Namespace) -> int:
    """List the configured data set as training would (same checks), then write its shards."""
    from hydra.utils import instantiate
    from tqdm import tqdm

    from hdvision.data.shard_writer import write_shards

    datamodule = instantiate(compose(args.overrides).data)
    datamodule.prepare_data()
    names = datamodule.class_names
    splits = datamodule.list_splits()
    bars: dict[str, tqdm] = {}

    def progress(split: str, done: int, total: int) -> None:
        if split not in bars:
            bars[split] = tqdm(total=total, desc=f"shard {split}", unit="img")
        bar = bars[split]
        bar.update(done - bar.n)
        if done == total:
            bar.close()

    out, wrote = write_shards(splits, names, args.out, args.shard_size, progress)
    counts = {s: len(listed) for s, listed in splits.items()}
    shards = len(list((out / "train").glob("chunk-*.bin"))) if "train" in splits else 0
    if 0 < shards < 16:
        # LitData hands whole shards to loader workers: fewer shards than workers x GPUs idle some.
        print(
            f"note: {shards} train shards; each loader worker of each GPU reads whole shards, so "
            "have at least data.num_workers x GPUs of them (a smaller --shard-size)"
        )
    state = "written" if wrote else "already there (same data set), nothing written"
    print(f"shards of {counts} images, {len(names)} classes at {out}: {state}")
    print(f"train on them with: data=shards data.source.uri={out.resolve()}")
    return 0


def cost(args: argparse.Namespace) -> int:
    import torch
    from hydra.utils import instantiate

    from hdvision.models.cost import (
        format_cost_report,
        measure_inference_parts,
        measure_train_step,
        model_cost_report,
        stem_input_size,
    )

    cfg = compose(args.overrides)
    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model, num_classes=datamodule.num_classes)
    step = parts = None
    if args.time_steps:
        # Before the report: its batch-2 forward passes would set the process's peak RSS first.
        size = stem_input_size(model, datamodule.sample_size)
        step = measure_train_step(model, size, args.batch_size, args.time_steps)
        parts = measure_inference_parts(model, size, args.batch_size, args.time_steps)
    print(format_cost_report(model_cost_report(model, datamodule.sample_size)))
    if step is not None:
        print(
            f"train step: {step['ms_per_image']:.1f} ms per image, peak memory "
            f"+{step['peak_mb_per_image']:.0f} MB per image (batch {args.batch_size}, mean of "
            f"{args.time_steps} steps after a warm-up, {torch.get_num_threads()} threads)"
        )
    if parts is not None:
        print(
            "inference (eval, no grad), ms per image: "
            + ", ".join(f"{k.removesuffix('_ms')} {v:.1f}" for k, v in parts.items())
            + f" (batch {args.batch_size})"
        )
    return 0


def bench_loader(args: argparse.Namespace) -> int:
    """Time the configured loader alone: is data or the model the bottleneck of a run?"""
    from hdvision.tools.data_pipeline import time_loader

    datamodule = set_up_datamodule(args.overrides)
    loader = getattr(datamodule, f"{args.split}_dataloader")()
    result = time_loader(loader, args.batches)
    size = datamodule.aug_size if args.split == "train" else datamodule.sample_size
    print(
        f"{args.split} loader: {result['img_s']:.1f} images/s ({1000 / result['img_s']:.1f} ms "
        f"per image) over {result['images']} images; decode/augment at {size[0]}x{size[1]}, "
        f"batches at {datamodule.sample_size[0]}x{datamodule.sample_size[1]}, "
        f"{datamodule.num_workers} workers, start-up {result['startup_s']:.1f} s"
    )
    return 0


def bench_data(args: argparse.Namespace) -> int:
    from hdvision.tools.data_pipeline import run_benchmark

    result = run_benchmark(args.images, args.size, args.aug_scale, args.workers, args.limit)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def sweep_summary(args: argparse.Namespace) -> int:
    from hdvision.tools.sweeps import format_summary, read_sweeps, summarize_trials

    optimized, rows = read_sweeps(args.sweeps)
    metrics = args.metric or [optimized]
    print(format_summary(summarize_trials(rows, metrics, args.ignore or ["seed"]), metrics))
    return 0


COMMANDS = {
    "check-data": check_data,
    "shard": shard,
    "cost": cost,
    "bench-loader": bench_loader,
    "bench-data": bench_data,
    "sweep-summary": sweep_summary,
}
