"""``predict --save-views``: per image, the decoded input beside what the stem hands the
backbone (where the saliency sampler zoomed), titled with the prediction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from hdvision.inference.inputs import InputRow
from hdvision.inference.predict import PredictionImages
from hdvision.inference.predictor import TorchPredictor
from hdvision.models.checkpoint import CheckpointError
from hdvision.plots import plot_view, stem_views


@torch.inference_mode()
def save_views(
    predictor: Any, rows: Sequence[InputRow], errors: Sequence[str], out_dir: str, count: int
) -> int:
    """PNGs for the first ``count`` good images; returns how many were written."""
    if not isinstance(predictor, TorchPredictor):
        raise CheckpointError(
            f"{predictor.path}: --save-views needs the checkpoint (.ckpt), which has the stem "
            "as its own module; an ONNX graph only gives logits"
        )
    dataset = PredictionImages(
        [r.path for r in rows], predictor.meta["preprocessing"], [r.member for r in rows]
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, names = predictor.model, predictor.meta["class_names"]
    chosen = [n for n in range(len(rows)) if not errors[n]][:count]
    for n in chosen:
        image = dataset[n]["image"][None].to(predictor.device)
        prepared = model.prepare_input(image)
        seen = stem_views(model, prepared)["stem"][0]
        label = names[int(model(prepared).argmax(1))]
        picture = plot_view(
            image[0].permute(1, 2, 0).cpu().numpy(), seen, f"{rows[n].path}: {label}"
        )
        Image.fromarray(picture).save(out / f"{n:05d}_{Path(rows[n].path).stem}.png")
    return len(chosen)
