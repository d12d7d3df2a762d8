"""``hdvision bench-infer``: one run, the same images, every way to run a trained model.

Model alone (decoded uint8 batches in memory): PyTorch eager fp32 (contiguous and channels-last),
``torch.compile`` fp32 and PT2E int8 (where a C++ compiler is present), onnxruntime fp32 and int8,
at batch 1 and 16, ms per image. End to end (JPEG files on disk →
``predict``'s loader with workers → model): images/s, against the decode-only floor measured in
the same run. Plus file sizes and accuracy on the labelled images.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdvision.inference.compiled import CompiledPredictor, compiler_missing, pt2e_int8
from hdvision.inference.export import export_onnx
from hdvision.inference.inputs import InputError, complete_labels, label_indices
from hdvision.inference.predict import prediction_loader, run_predictions
from hdvision.inference.predictor import OnnxPredictor, TorchPredictor
from hdvision.inference.quantize import calibration_images, quantize_onnx
from hdvision.inference.samples import decoded_batch, image_rows


def time_model(predictor: Any, images: torch.Tensor, batch_size: int, repeats: int) -> float:
    """Median over ``repeats`` rounds of ms per image, after one warm-up batch."""
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches[:1]
    predictor(batches[0])
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            predictor(batch)
        rounds.append((time.perf_counter() - start) * 1000 / sum(len(b) for b in batches))
    return float(np.median(rounds))


def accuracy(predictor: Any, images: torch.Tensor, labels: list[int]) -> float | None:
    if not labels:
        return None
    logits = np.concatenate([predictor(images[i : i + 32]) for i in range(0, len(images), 32)])
    return float((logits.argmax(1) == np.asarray(labels)).mean())


def decode_floor(paths: list[str], preprocessing: dict, workers: int) -> float:
    """Images/s of the prediction loader alone (decode + pad/crop + collate)."""
    loader = prediction_loader(paths, preprocessing, 16, workers)
    start, count = time.perf_counter(), 0
    for batch in loader:
        count += len(batch["index"])
    return count / (time.perf_counter() - start)


def end_to_end(predictor: Any, rows: list, workers: int, images: torch.Tensor) -> float:
    """Images/s of ``predict``'s path over ``rows``, after one call at the last batch's size
    (``images``: decoded ones of the same size): a compiled model would compile it in the run."""
    if remainder := len(rows) % 16:
        predictor(images[:remainder])
    start = time.perf_counter()
    run_predictions(predictor, rows, 16, workers, "raise", progress=False)
    return len(rows) / (time.perf_counter() - start)


def _with_layout(predictor: TorchPredictor, channels_last: bool) -> TorchPredictor:
    """The same model with its weights and inputs in the other memory layout."""
    predictor.model.hparams.channels_last = channels_last  # prepare_input reads it
    layout = torch.channels_last if channels_last else torch.contiguous_format
    predictor.model.to(memory_format=layout)
    return predictor


def _torch_name(predictor: TorchPredictor) -> str:
    return "pytorch fp32" + (" channels-last" if predictor.model.hparams.channels_last else "")


def state_bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def graph_bytes(graph: Any) -> int:
    """Bytes of the tensors a converted PT2E graph reads (its int8 weights and the float ones it
    keeps); its state dict also holds the float originals it no longer uses."""
    total = 0
    for node in graph.graph.nodes:
        if node.op == "get_attr":
            value = graph
            for part in node.target.split("."):
                value = getattr(value, part)
            if isinstance(value, torch.Tensor):
                total += value.numel() * value.element_size()
    return total


def run_inference_benchmark(
    checkpoint: str,
    images: str | None = None,
    num_images: int = 256,
    calibration: str | None = None,
    workers: int = 2,
    repeats: int = 5,
    work_dir: str | None = None,
    compiled: bool = True,
    keep_float: Sequence[str] = (),
) -> dict[str, Any]:
    """Every variant on the same images; ``compiled=False`` (or no C++ compiler) leaves out the
    ``torch.compile`` rows, which spend a minute or more compiling."""
    notes = []
    if compiled and (missing := compiler_missing()):
        notes.append(f"torch.compile rows left out: {missing}")
        compiled = False
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(work_dir or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        eager = TorchPredictor(checkpoint)
        pre, names = eager.meta["preprocessing"], eager.meta["class_names"]
        rows = image_rows(images, eager.meta, num_images, "--images")
        labels = complete_labels(label_indices(rows, names))
        batch = decoded_batch(rows, pre)
        if len(batch) != len(rows):
            raise InputError(
                f"{len(rows) - len(batch)} of the benchmark images are bad files; check them "
                "with `hdvision predict ... --on-bad-image skip`"
            )
        parity = export_onnx(checkpoint, folder / "model.onnx", images, min(32, len(rows)))
        # One set of decoded calibration images for both int8 variants.
        calibrating = calibration_images(calibration, eager.meta)
        quantize_onnx(
            folder / "model.onnx",
            folder / "model.int8.onnx",
            keep_float=keep_float,
            images=calibrating,
        )
        other = _with_layout(TorchPredictor(checkpoint), not eager.model.hparams.channels_last)
        variants: dict[str, Any] = {
            _torch_name(eager): eager,
            _torch_name(other): other,
            "onnxruntime fp32": OnnxPredictor(folder / "model.onnx"),
            "onnxruntime int8": OnnxPredictor(folder / "model.int8.onnx"),
        }
        sizes = {
            "pytorch": state_bytes(eager.model),
            "onnxruntime fp32": (folder / "model.onnx").stat().st_size,
            "onnxruntime int8": (folder / "model.int8.onnx").stat().st_size,
        }
        if compiled:
            int8 = pt2e_int8(eager, calibrating)
            variants["pytorch fp32 torch.compile"] = CompiledPredictor(eager)
            variants["pytorch int8 pt2e torch.compile"] = int8
            sizes["pytorch int8 pt2e torch.compile"] = graph_bytes(int8.module)
        floor = decode_floor([r.path for r in rows], pre, workers)
        results = []
        for name, predictor in variants.items():
            row = {
                "variant": name,
                "ms_batch1": time_model(predictor, batch[:32], 1, repeats),
                "ms_batch16": time_model(predictor, batch, 16, repeats),
                "accuracy": accuracy(predictor, batch, labels),
                "size_mb": sizes[name if name in sizes else "pytorch"] / 1e6,
            }
            row["e2e_img_s"] = end_to_end(predictor, rows, workers, batch)
            results.append(row)
    return {
        "images": len(rows),
        "image_size": pre["image_size"],
        "sample_size": pre["sample_size"],
        "workers": workers,
        "threads": torch.get_num_threads(),
        "decode_floor_img_s": floor,
        "parity": parity,
        "results": results,
        "keep_float": list(keep_float),
        "notes": notes,
    }


def format_results(result: dict[str, Any]) -> str:
    base = result["results"][0]["ms_batch16"]
    lines = [
        f"{result['images']} images, {result['image_size'][0]}x{result['image_size'][1]} JPEG "
        f"decoded at {result['sample_size'][0]}x{result['sample_size'][1]}; "
        f"{result['threads']} threads, {result['workers']} loader workers",
        f"decode-only floor: {result['decode_floor_img_s']:.1f} images/s",
        f"{'variant':32s} {'ms/img b1':>10s} {'ms/img b16':>11s} {'vs fp32':>8s} "
        f"{'e2e img/s':>10s} {'% floor':>8s} {'MB':>6s} {'accuracy':>9s}",
    ]
    for r in result["results"]:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        lines.append(
            f"{r['variant']:32s} {r['ms_batch1']:10.2f} {r['ms_batch16']:11.2f} "
            f"{base / r['ms_batch16']:7.2f}x {r['e2e_img_s']:10.1f} "
            f"{100 * r['e2e_img_s'] / result['decode_floor_img_s']:7.0f}% "
            f"{r['size_mb']:6.1f} {acc:>9s}"
        )
    p = result["parity"]
    lines.append(
        f"ONNX parity: max |logit difference| {p['max_abs_diff']:.2e}, top-1 agreement "
        f"{p['top1_agreement']:.1%} on {p['images']} images"
    )
    if result.get("keep_float"):
        lines.append(f"onnxruntime int8 keeps in float: {', '.join(result['keep_float'])}")
    lines += result.get("notes", [])
    return "\n".join(lines)
