"""After training: ``hdvision predict | export | quantize | bench-infer | bench-models`` (argparse
only; the work is in :mod:`hdvision.inference`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hdvision.cli.args import non_negative, output_file, positive
from hdvision.data.dataset import BAD_IMAGE_POLICIES
from hdvision.inference.quantize import BIAS_CORRECTION_IMAGES, CALIBRATION_METHODS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict on image files, folders or a CSV manifest")
    p.add_argument("model", help="a train.py checkpoint (.ckpt) or an `hdvision export` .onnx")
    p.add_argument(
        "inputs", nargs="+", help="image files, folders (recursive) or path[,label] CSVs"
    )
    p.add_argument(
        "--out",
        type=output_file,
        default="predictions.csv",
        help="CSV to write (default: %(default)s)",
    )
    p.add_argument("--top-k", type=positive, default=5)
    p.add_argument("--batch-size", type=positive, default=16)
    p.add_argument("--workers", type=non_negative, default=2, help="decoding processes")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--on-bad-image", choices=BAD_IMAGE_POLICIES, default="raise")
    p.add_argument("--save-views", metavar="DIR", help="PNGs: input beside the stem's output")
    p.add_argument("--num-views", type=positive, default=8, help="images for --save-views")

    e = sub.add_parser("export", help="checkpoint -> ONNX (uint8 images -> logits), with parity")
    e.add_argument("checkpoint")
    e.add_argument("--format", choices=("onnx",), default="onnx")
    e.add_argument("--out", type=output_file, default="model.onnx")
    e.add_argument(
        "--calibration-images",
        help="folder/CSV for the parity check (default: the checkpoint's training data)",
    )
    e.add_argument("--num-images", type=positive, default=32, help="images in the parity check")
    e.add_argument("--tolerance", type=float, default=None, help="max |logit difference|")

    q = sub.add_parser("quantize", help="fp32 ONNX -> static int8 ONNX (onnxruntime)")
    q.add_argument("model", help="an `hdvision export` .onnx file")
    q.add_argument(
        "--calibration",
        help="folder/CSV of training images (default: the checkpoint's training data)",
    )
    q.add_argument("--num-images", type=positive, default=512, help="calibration images")
    q.add_argument("--method", choices=CALIBRATION_METHODS, default="minmax")
    q.add_argument("--out", type=output_file, default="model.int8.onnx")
    q.add_argument(
        "--keep-float",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module path left in float (repeatable), e.g. model.backbone.blocks.0",
    )
    q.add_argument(
        "--bias-correction",
        type=non_negative,
        default=BIAS_CORRECTION_IMAGES,
        metavar="N",
        help="correct the int8 convolutions' biases on N of the calibration images (0: off)",
    )
    q.add_argument(
        "--report",
        type=non_negative,
        default=0,
        metavar="N",
        help="then print the N tensors int8 moves furthest from fp32 (SQNR, 64 images)",
    )

    b = sub.add_parser("bench-infer", help="PyTorch vs onnxruntime fp32 vs int8, side by side")
    b.add_argument("checkpoint")
    b.add_argument(
        "--images",
        help="labelled CSV/folder of test images (default: the checkpoint's training data)",
    )
    b.add_argument("--num-images", type=positive, default=256)
    b.add_argument("--calibration", help="folder/CSV of training images for int8")
    b.add_argument("--workers", type=non_negative, default=2)
    b.add_argument("--repeats", type=positive, default=5, help="timed rounds per model and batch")
    b.add_argument("--work-dir", help="where the ONNX files go (default: a temporary folder)")
    b.add_argument(
        "--keep-float",
        action="append",
        default=[],
        metavar="MODULE",
        help="a module the onnxruntime int8 model leaves in float (as for quantize)",
    )
    b.add_argument(
        "--no-compile",
        action="store_true",
        help="leave out the torch.compile rows (fp32 and PT2E int8; they compile for minutes)",
    )
    b.add_argument("--json", type=output_file, help="also write the numbers here")

    c = sub.add_parser("bench-models", help="cost of several checkpoints, one run, same images")
    c.add_argument("checkpoints", nargs="+", help="the first is the reference for speed-ups")
    c.add_argument(
        "--images",
        help="labelled folder/CSV of test images (default: the checkpoint's training data)",
    )
    c.add_argument("--num-images", type=positive, default=128)
    c.add_argument("--batch-size", type=positive, default=16)
    c.add_argument("--repeats", type=positive, default=5, help="timed rounds per model")
    c.add_argument("--json", type=output_file, help="also write the numbers here")


def predict(args: argparse.Namespace) -> int:
    from hdvision.inference.inputs import list_inputs
    from hdvision.inference.predict import labelled_metrics, run_predictions, write_predictions
    from hdvision.inference.predictor import load_predictor

    rows = list_inputs(args.inputs)
    predictor = load_predictor(args.model, args.device)
    logits, errors = run_predictions(
        predictor, rows, args.batch_size, args.workers, args.on_bad_image
    )
    names = predictor.meta["class_names"]
    write_predictions(args.out, rows, logits, errors, names, args.top_k)
    bad = sum(1 for e in errors if e)
    print(f"{len(rows)} rows written to {args.out}; {bad} bad files recorded with their error")
    out = Path(args.out)
    metrics = labelled_metrics(
        rows, logits, errors, names, out.with_name(f"{out.stem}_confusion.png")
    )
    if metrics is not None:
        print(
            f"labelled: {metrics['images']} images, accuracy {metrics['accuracy']:.4f}, "
            f"macro-F1 {metrics['macro_f1']:.4f}; confusion matrix in {out.stem}_confusion.png"
        )
    if args.save_views:
        from hdvision.inference.views import save_views

        written = save_views(predictor, rows, errors, args.save_views, args.num_views)
        print(f"{written} views written to {args.save_views}")
    return 0


def export(args: argparse.Namespace) -> int:
    from hdvision.inference.export import DEFAULT_TOLERANCE, export_onnx

    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    parity = export_onnx(
        args.checkpoint, args.out, args.calibration_images, args.num_images, tolerance
    )
    size = Path(args.out).stat().st_size / 1e6
    print(
        f"exported {args.out} ({size:.1f} MB); parity on {parity['images']} images: max |logit "
        f"difference| {parity['max_abs_diff']:.2e} (tolerance {tolerance:g}), top-1 agreement "
        f"{parity['top1_agreement']:.1%}"
    )
    return 0


def quantize(args: argparse.Namespace) -> int:
    from hdvision.inference.quantize import quantize_onnx

    info = quantize_onnx(
        args.model,
        args.out,
        args.calibration,
        args.num_images,
        method=args.method,
        keep_float=args.keep_float,
        bias_correction=args.bias_correction,
    )
    size = Path(args.out).stat().st_size / 1e6
    corrected = info["bias_correction"]
    print(
        f"int8 model {args.out} ({size:.1f} MB), calibrated ({info['method']}) on "
        f"{info['calibration_images']} images"
        + (f"; kept in float: {', '.join(args.keep_float)}" if args.keep_float else "")
        + (
            f"; biases of {corrected['convolutions']} convolutions corrected on "
            f"{corrected['images']} images"
            if corrected["images"]
            else "; no bias correction"
        )
    )
    if args.report:
        from hdvision.inference.int8_debug import activation_errors, format_errors
        from hdvision.inference.predictor import OnnxPredictor
        from hdvision.inference.quantize import calibration_images

        images = calibration_images(args.calibration, OnnxPredictor(args.model).meta, 64)
        print(format_errors(activation_errors(args.model, args.out, images), args.report))
    return 0


def bench_infer(args: argparse.Namespace) -> int:
    from hdvision.inference.bench import format_results, run_inference_benchmark

    result = run_inference_benchmark(
        args.checkpoint,
        images=args.images,
        num_images=args.num_images,
        calibration=args.calibration,
        workers=args.workers,
        repeats=args.repeats,
        work_dir=args.work_dir,
        compiled=not args.no_compile,
        keep_float=args.keep_float,
    )
    print(format_results(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def bench_models(args: argparse.Namespace) -> int:
    from hdvision.inference.compare import compare_models, format_comparison

    rows = compare_models(
        args.checkpoints, args.images, args.num_images, args.batch_size, args.repeats
    )
    print(format_comparison(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


COMMANDS = {
    "predict": predict,
    "export": export,
    "quantize": quantize,
    "bench-infer": bench_infer,
    "bench-models": bench_models,
}
