"""Real decoded images for parity checks, int8 calibration and benchmarks: a folder or manifest
the user names, or else the training data the model's checkpoint records; never a stand-in."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdvision.data.shard_members import is_shard_set
from hdvision.inference.inputs import InputError, InputRow, list_inputs
from hdvision.inference.predict import PredictionImages

log = logging.getLogger(__name__)


def image_rows(
    source: str | None, meta: Mapping[str, Any], count: int, option: str
) -> list[InputRow]:
    """Up to ``count`` rows from ``source`` (a folder, file or manifest); without one, from the
    training data the model records (``meta["training_data"]``); with neither, an
    :class:`InputError` that names ``option``, the command-line flag that gives the images."""
    if source is None:
        recorded = meta.get("training_data")
        if not recorded:
            raise InputError(
                f"no images given and the model records no training data: pass {option} "
                "DIR_OR_CSV (images the model was trained on)"
            )
        if not is_shard_set(str(recorded)) and not Path(recorded).exists():
            raise InputError(
                f"no images given and the model's training data {recorded} is not on this "
                f"machine: pass {option} DIR_OR_CSV"
            )
        log.info("Images: %s (the model's training data; %s chooses others)", recorded, option)
        source = str(recorded)
    return list_inputs([source], limit=count)[:count]


def decoded_batch(rows: list[InputRow], preprocessing: dict[str, Any]) -> torch.Tensor:
    """The rows decoded through the prediction path: uint8 (N, 3, H, W); bad files left out."""
    dataset = PredictionImages([r.path for r in rows], preprocessing, [r.member for r in rows])
    images = [
        item["image"] for item in (dataset[i] for i in range(len(dataset))) if not item["error"]
    ]
    if not images:
        raise InputError(f"none of the {len(rows)} images could be decoded (first: {rows[0].path})")
    return torch.stack(images)
