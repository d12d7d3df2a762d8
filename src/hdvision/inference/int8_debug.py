"""Where int8 loses accuracy: per tensor, how far the int8 model's activation is from the fp32
model's (signal-to-quantization-noise ratio, dB; low is bad), with onnxruntime's own QDQ debugging
tools (``onnxruntime.quantization.qdq_loss_debug``) on real images."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


def activation_errors(
    fp32_model: str | Path, int8_model: str | Path, images: torch.Tensor, batch_size: int = 16
) -> list[dict[str, Any]]:
    """Per quantized tensor: ``name``, ``own_db`` (the SQNR of quantizing that tensor alone) and
    ``model_db`` (the int8 model's activation against the fp32 model's, errors of every layer
    before it included), sorted worst ``model_db`` first."""
    import onnxruntime as ort
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    session = ort.InferenceSession(str(fp32_model), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    with tempfile.TemporaryDirectory() as scratch:
        activations = {}
        for kind, path in (("fp32", fp32_model), ("int8", int8_model)):
            augmented = Path(scratch) / f"{kind}.onnx"
            modify_model_output_intermediate_tensors(str(path), str(augmented))
            # Any iterable of feeds serves as the reader (it is only iterated).
            feeds = [
                {input_name: images[i : i + batch_size].numpy()}
                for i in range(0, len(images), batch_size)
            ]
            activations[kind] = collect_activations(str(augmented), feeds)  # type: ignore[arg-type]
    matched = create_activation_matching(activations["int8"], activations["fp32"])
    errors = compute_activation_error(matched)
    rows = [
        {
            "name": tensor,
            "own_db": float(err.get("qdq_err", np.nan)),
            "model_db": float(err.get("xmodel_err", np.nan)),
        }
        for tensor, err in errors.items()
    ]
    return sorted(rows, key=lambda r: (np.isnan(r["model_db"]), r["model_db"]))


def format_errors(rows: list[dict[str, Any]], count: int) -> str:
    lines = [f"{'SQNR model dB':>14} {'SQNR own dB':>12}  tensor (worst first)"]
    for row in rows[:count]:
        lines.append(f"{row['model_db']:14.1f} {row['own_db']:12.1f}  {row['name']}")
    return "\n".join(lines)
