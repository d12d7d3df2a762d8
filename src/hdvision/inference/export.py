"""``hdvision export``: a checkpoint → one ONNX graph from uint8 images to logits, with the
model's classes and preprocessing in its metadata, checked against PyTorch on real images."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdvision.errors import UserError
from hdvision.inference.predictor import ONNX_META_KEY, OnnxPredictor, TorchPredictor
from hdvision.inference.samples import decoded_batch, image_rows

# Parity bound on |logit difference| between PyTorch and onnxruntime fp32: float32 rounding in a
# different kernel order stays orders of magnitude below it (measured ~1e-6 on the default model);
# anything near it is a wrong graph, not rounding.
DEFAULT_TOLERANCE = 1e-3


class ParityError(UserError):
    """The exported graph does not compute what the checkpoint computes."""


def set_metadata(model: Any, meta: dict[str, Any]) -> None:
    """Store ``meta`` as JSON under an ONNX ``ModelProto``'s ``hdvision`` metadata key."""
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_META_KEY, json.dumps(meta)


def add_metadata(path: str | Path, meta: dict[str, Any]) -> None:
    """:func:`set_metadata` on an ONNX file, in place."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    set_metadata(model, meta)
    onnx.save(model, str(path))


def compare(reference: Any, candidate: Any, images: torch.Tensor, batch_size: int = 16) -> dict:
    """Max |logit difference| and top-1 agreement of two predictors on ``images``."""
    diffs, agree = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        a, b = reference(batch), candidate(batch)
        diffs.append(float(np.abs(a - b).max()))
        agree.extend(a.argmax(1) == b.argmax(1))
    return {
        "images": len(images),
        "max_abs_diff": max(diffs),
        "top1_agreement": float(np.mean(agree)),
    }


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    images: str | None = None,
    num_images: int = 32,
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = 18,
) -> dict[str, Any]:
    """Export ``checkpoint`` to ``out`` and check parity on ``num_images`` decoded images (from
    ``images``, a folder or manifest; default: the training data the checkpoint records). Raises
    :class:`ParityError` when top-1 agreement is below 100 % or a logit differs by more than
    ``tolerance``; then no file is left at ``out``."""
    torch_model = TorchPredictor(checkpoint)
    # The images first: a missing one stops the command before the minute-long export.
    rows = image_rows(images, torch_model.meta, num_images, "--calibration-images")
    batch = decoded_batch(rows, torch_model.meta["preprocessing"])
    size = tuple(torch_model.meta["preprocessing"]["sample_size"])
    example = torch.zeros(2, 3, *size, dtype=torch.uint8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside, renamed into place once it passed: a failed check leaves no model file.
    draft = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        # The dynamo (torch.export) exporter: the TorchScript one cannot export the area resize
        # (adaptive_avg_pool2d to a size that does not divide the input); dynamo passes parity.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                torch_model.net,
                (example,),
                str(draft),
                dynamo=True,
                external_data=False,  # one self-contained file (models here are far below 2 GB)
                opset_version=opset,
                input_names=["images"],
                output_names=["logits"],
                dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=4096)}},
                verbose=False,
            )
        add_metadata(draft, torch_model.meta)
        parity = compare(torch_model, OnnxPredictor(draft), batch)
        parity["tolerance"] = tolerance
        if parity["top1_agreement"] < 1.0 or parity["max_abs_diff"] > tolerance:
            raise ParityError(
                f"{out}: onnxruntime differs from PyTorch on {parity['images']} images: max "
                f"|logit difference| {parity['max_abs_diff']:.3g} (tolerance {tolerance:g}), "
                f"top-1 agreement {parity['top1_agreement']:.1%}; no file written"
            )
        draft.replace(out)
    finally:
        draft.unlink(missing_ok=True)
    return parity
