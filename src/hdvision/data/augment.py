"""Albumentations pipelines built from plain lists of transform specs (Hydra passes them in).

Training runs the random transforms at ``sample_size`` (the augmentation resolution), after the
decoder has already brought the image down to it; evaluation only pads or centre-crops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import albumentations as A
import cv2


def _build_transform(spec: Mapping[str, Any] | A.BasicTransform) -> A.BasicTransform:
    if isinstance(spec, A.BasicTransform | A.BaseCompose):
        return spec
    spec = dict(spec)
    name = spec.pop("name", None) or spec.pop("_target_", None)
    if name is None:
        raise ValueError(f"augmentation spec {spec} needs a 'name' (an Albumentations class)")
    short = str(name).rsplit(".", 1)[-1]
    cls = getattr(A, short, None)
    if cls is None:
        raise ValueError(f"unknown Albumentations transform {name!r} in data.augmentations")
    return cls(**spec)


def build_augmentations(
    specs: Sequence[Mapping[str, Any] | A.BasicTransform] | Mapping[str, Any] | None,
    sample_size: tuple[int, int],
    fit: str = "letterbox",
    train: bool = True,
    output_size: tuple[int, int] | None = None,
) -> A.Compose:
    """Pad/crop to exactly ``sample_size`` (h, w), then the random transforms when ``train``,
    then an area resize to ``output_size`` when that differs (augment high, train low).

    ``specs`` is a list (or a name → spec mapping, which is what Hydra overrides edit most
    easily; ``null`` entries are dropped) of ``{name: HorizontalFlip, p: 0.5, ...}`` dicts.
    """
    height, width = sample_size
    if fit == "letterbox":
        shape: list[A.BasicTransform] = [
            A.PadIfNeeded(height, width, border_mode=cv2.BORDER_CONSTANT, fill=0),
            A.CenterCrop(height, width),
        ]
    elif fit == "crop":
        crop = A.RandomCrop(height, width) if train else A.CenterCrop(height, width)
        shape = [A.PadIfNeeded(height, width, border_mode=cv2.BORDER_CONSTANT, fill=0), crop]
    else:
        raise ValueError(f"data.fit must be 'letterbox' or 'crop', got {fit!r}")
    if isinstance(specs, Mapping):
        specs = [dict(v, name=v.get("name", k)) for k, v in specs.items() if v is not None]
    randoms = [_build_transform(s) for s in (specs or [])] if train else []
    if output_size is not None and tuple(output_size) != (height, width):
        randoms.append(A.Resize(*output_size, interpolation=cv2.INTER_AREA))
    return A.Compose(shape + randoms)
