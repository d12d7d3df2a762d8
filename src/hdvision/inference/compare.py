"""``hdvision bench-models``: the cost of several checkpoints side by side, measured in one run
on the same images (e.g. a model and its pruned or distilled versions).

Per checkpoint: parameters and GFLOPs (``FlopCounterMode``) of the backbone and of the whole
model (stem included, at the decode size), CPU ms per image at one batch size for the whole
model (uint8 → logits) and for the backbone alone (on the stem's output), and top-1 accuracy on
the labelled images. Timing rounds alternate between the models, so that a machine that slows
down mid-run slows all of them alike.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdvision.inference.bench import accuracy
from hdvision.inference.inputs import InputError, complete_labels, label_indices
from hdvision.inference.predictor import TorchPredictor
from hdvision.inference.samples import decoded_batch, image_rows
from hdvision.models.cost import count_params, forward_flops


def _ms_per_image(fn: Any, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            fn(batch)
    return (time.perf_counter() - start) * 1000 / sum(len(b) for b in batches)


def _batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    full = [x[i : i + batch_size] for i in range(0, len(x), batch_size)]
    return [b for b in full if len(b) == batch_size] or full[:1]


def compare_models(
    checkpoints: list[str],
    images: str | None = None,
    num_images: int = 128,
    batch_size: int = 16,
    repeats: int = 5,
) -> list[dict[str, Any]]:
    """One row per checkpoint (see the module docstring); images decoded per model's own
    preprocessing, from ``images`` (folder/CSV; default: each checkpoint's training data)."""
    if not checkpoints:
        raise InputError("no checkpoints given")
    torch.manual_seed(0)
    models, rows_out = [], []
    for path in checkpoints:
        predictor = TorchPredictor(path)
        model = predictor.model
        pre = model.hparams.preprocessing
        rows = image_rows(images, predictor.meta, num_images, "--images")
        decoded = decoded_batch(rows, pre)
        labels = complete_labels(label_indices(rows, model.hparams.class_names))
        with torch.inference_mode():
            features = torch.cat(
                [model.stem_output(model.prepare_input(b)) for b in decoded.split(batch_size)]
            )
        size = features.shape[-2:]  # what the backbone sees (the stem's output)
        one = decoded[:1]
        models.append((predictor, _batches(decoded, batch_size), _batches(features, batch_size)))
        rows_out.append(
            {
                "checkpoint": str(path),
                "pruned": (model.hparams.get("pruned") or {}).get("ratio", 0.0),
                "backbone_params": count_params(model.backbone)[0],
                "params": count_params(model)[0],
                "backbone_gflops": forward_flops(model.backbone, torch.zeros(1, 3, *size)) / 1e9,
                "gflops": forward_flops(predictor.net, one) / 1e9,
                "accuracy": accuracy(predictor, decoded, labels)
                if len(labels) == len(decoded)
                else None,
                "images": len(decoded),
            }
        )
    for predictor, image_batches, feature_batches in models:  # warm-up
        predictor(image_batches[0])
        with torch.inference_mode():
            predictor.model.backbone(feature_batches[0])
    times: list[tuple[list[float], list[float]]] = [([], []) for _ in models]
    for _ in range(repeats):
        for (predictor, image_batches, feature_batches), (whole, backbone) in zip(
            models, times, strict=True
        ):
            whole.append(_ms_per_image(predictor.net, image_batches))
            backbone.append(_ms_per_image(predictor.model.backbone, feature_batches))
    for row, (whole, backbone) in zip(rows_out, times, strict=True):
        row["ms_per_image"] = float(np.median(whole))
        row["backbone_ms_per_image"] = float(np.median(backbone))
        row["batch_size"] = batch_size
    return rows_out


def format_comparison(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    lines = [
        "| checkpoint | backbone params | backbone GFLOPs | model GFLOPs | ms/img model "
        f"(b{base['batch_size']}) | ms/img backbone | speed-up model / backbone | top-1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        acc = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.1%}"
        lines.append(
            f"| {Path(row['checkpoint']).name} | {row['backbone_params'] / 1e6:.2f}M | "
            f"{row['backbone_gflops']:.3f} | {row['gflops']:.3f} | {row['ms_per_image']:.1f} | "
            f"{row['backbone_ms_per_image']:.2f} | "
            f"{base['ms_per_image'] / row['ms_per_image']:.2f}× / "
            f"{base['backbone_ms_per_image'] / row['backbone_ms_per_image']:.2f}× | {acc} |"
        )
    return "\n".join(lines)
