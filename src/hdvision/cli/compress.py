"""Smaller models: ``hdvision prune | qat`` (argparse only; the work is in
:mod:`hdvision.compress`)."""

from __future__ import annotations

import argparse

from hdvision.cli.args import non_negative, output_file, positive, positive_float
from hdvision.compress.prune import IMPORTANCES


def prune_ratio(text: str) -> float:
    from hdvision.compress.prune import check_ratio

    try:
        return check_ratio(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_parsers(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("prune", help="structured channel pruning of the backbone (Torch-Pruning)")
    r.add_argument("checkpoint")
    r.add_argument(
        "--ratio", type=prune_ratio, required=True, help="share of channels removed, (0, 1)"
    )
    r.add_argument("--importance", choices=IMPORTANCES, default="l1")
    r.add_argument("--prune-head", action="store_true", help="also prune conv_head's channels")
    r.add_argument(
        "--round-to",
        type=positive,
        metavar="N",
        help="keep a multiple of N channels in every pruned layer (e.g. 8: faster CPU kernels)",
    )
    r.add_argument(
        "--images",
        help="labelled folder/CSV for taylor (default: the checkpoint's training data)",
    )
    r.add_argument("--num-images", type=positive, default=64, help="images for taylor")
    r.add_argument("--out", type=output_file, default="pruned.ckpt")

    q = sub.add_parser(
        "qat", help="fine-tune with int8 simulated in the backbone -> a checkpoint to quantize"
    )
    q.add_argument("checkpoint")
    q.add_argument(
        "--images", help="labelled folder/CSV to fine-tune on (default: the training data)"
    )
    q.add_argument("--num-images", type=positive, default=4096, help="training images")
    q.add_argument("--epochs", type=positive, default=1, help="passes over them")
    q.add_argument("--lr", type=positive_float, default=1e-4, help="AdamW, cosine to zero")
    q.add_argument("--batch-size", type=positive, default=16)
    q.add_argument("--workers", type=non_negative, default=2, help="decoding processes")
    q.add_argument("--out", type=output_file, default="qat.ckpt")


def prune(args: argparse.Namespace) -> int:
    from hdvision.compress.prune import prune_checkpoint

    info = prune_checkpoint(
        args.checkpoint,
        args.out,
        args.ratio,
        args.importance,
        args.prune_head,
        args.images,
        args.num_images,
        args.round_to,
    )
    before, after = info["before"], info["after"]
    print(
        f"pruned {info['layers']} layers of the backbone ({args.importance}, ratio {args.ratio}): "
        f"params {before['params'] / 1e6:.2f}M -> {after['params'] / 1e6:.2f}M, GFLOPs "
        f"{before['flops'] / 1e9:.3f} -> {after['flops'] / 1e9:.3f} "
        f"({1 - after['flops'] / before['flops']:.0%} fewer); wrote {args.out}\n"
        f"fine-tune: python train.py experiment=prune_finetune init_from={args.out}"
    )
    return 0


def qat(args: argparse.Namespace) -> int:
    from hdvision.compress.qat import qat_checkpoint

    info = qat_checkpoint(
        args.checkpoint,
        args.out,
        args.images,
        args.num_images,
        args.epochs,
        args.lr,
        args.batch_size,
        args.workers,
    )
    print(
        f"wrote {args.out}: fine-tuned {args.epochs} epoch(s) on {info['images']} images with "
        f"int8 simulated in the backbone (last loss {info['loss']:.3f}); now\n"
        f"hdvision export {args.out} --out model.onnx && "
        "hdvision quantize model.onnx --out model.int8.onnx"
    )
    return 0


COMMANDS = {"prune": prune, "qat": qat}
