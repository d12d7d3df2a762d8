"""Real decoded images for parity checks, int8 calibration and benchmarks: a folder or manifest
of the user's, or HD-digits canvases written as JPEG files and decoded like any other file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hdvision.data.hd_digits import HDDigitsSpec, write_chunk
from hdvision.inference.inputs import InputError, InputRow, list_inputs
from hdvision.inference.predict import PredictionImages


def write_hd_digits(
    out_dir: str | Path, image_size: tuple[int, int], count: int, split: str = "test", seed: int = 0
) -> list[InputRow]:
    """``count`` HD-digits JPEGs at ``image_size`` (digits scaled as the default's 80 px on
    1080 rows), drawn from ``split``'s source digits; rows carry their labels."""
    digit = max(8, round(80 * min(image_size) / 1080))
    canvas = (int(image_size[0]), int(image_size[1]))
    spec = HDDigitsSpec(canvas=canvas, digit_size=digit, num_distractors=0, seed=seed)
    out = Path(out_dir)
    (out / split).mkdir(parents=True, exist_ok=True)
    return [
        InputRow(str(out / rel), str(label))
        for rel, label in write_chunk((spec, split, 0, count, out))
    ]


def image_rows(
    source: str | None,
    preprocessing: dict[str, Any],
    count: int,
    scratch: str | Path,
    split: str = "test",
) -> list[InputRow]:
    """Up to ``count`` rows from ``source`` (folder, file or manifest), or generated HD digits
    in ``scratch`` when ``source`` is None."""
    if source is None:
        return write_hd_digits(scratch, tuple(preprocessing["image_size"]), count, split)
    return list_inputs([source])[:count]


def decoded_batch(rows: list[InputRow], preprocessing: dict[str, Any]) -> torch.Tensor:
    """The rows decoded through the prediction path: uint8 (N, 3, H, W); bad files left out."""
    dataset = PredictionImages([r.path for r in rows], preprocessing)
    images = [
        item["image"] for item in (dataset[i] for i in range(len(dataset))) if not item["error"]
    ]
    if not images:
        raise InputError(f"none of the {len(rows)} images could be decoded (first: {rows[0].path})")
    return torch.stack(images)
