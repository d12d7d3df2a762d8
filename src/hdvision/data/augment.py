"""Albumentations pipelines built from plain lists of transform specs (Hydra passes them in).

Training runs the random transforms at ``sample_size`` (the augmentation resolution), after the
decoder has already brought the image down to it; evaluation only pads or centre-crops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np


class ShrinkShift(A.DualTransform):
    """Scale jitter and translation that keep everything on the canvas: the image shrinks by a
    factor drawn from ``scale`` (≤ 1, area filter) and lands at a random place of a canvas of its
    own size filled with ``fill``. Affine's ``translate`` pushes whatever lies near a border off
    the canvas (a Megapixel-MNIST digit can touch it: the label changes); here the shift never
    exceeds the margin the shrink freed, so every object stays whole (masks follow, nearest)."""

    def __init__(
        self, scale: tuple[float, float] = (0.85, 1.0), fill: float = 0, p: float = 0.5
    ) -> None:
        super().__init__(p=p)
        low, high = (float(v) for v in scale)
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"ShrinkShift scale must be [low, high] with 0 < low <= high <= 1, got {scale}"
            )
        self.scale, self.fill = (low, high), fill

    def get_params_dependent_on_data(self, params: dict, data: dict) -> dict:
        height, width = params["shape"][:2]
        factor = self.py_random.uniform(*self.scale)
        inner = (max(1, round(height * factor)), max(1, round(width * factor)))
        top = self.py_random.randint(0, height - inner[0])
        left = self.py_random.randint(0, width - inner[1])
        return {"inner": inner, "top": top, "left": left}

    def _place(
        self, image: np.ndarray, inner: tuple[int, int], top: int, left: int, fill: float, how: int
    ) -> np.ndarray:
        small = cv2.resize(image, (inner[1], inner[0]), interpolation=how)
        out = np.full_like(image, fill)
        out[top : top + inner[0], left : left + inner[1]] = small.reshape(inner + image.shape[2:])
        return out

    def apply(self, img: np.ndarray, inner: tuple[int, int], top: int, left: int, **_: Any) -> Any:
        return self._place(img, inner, top, left, self.fill, cv2.INTER_AREA)

    def apply_to_mask(
        self, mask: np.ndarray, inner: tuple[int, int], top: int, left: int, **_: Any
    ) -> Any:
        return self._place(mask, inner, top, left, 0, cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale", "fill")


# hdvision's own transforms, found by name beside Albumentations' (data.augmentations).
TRANSFORMS: dict[str, type[A.BasicTransform]] = {"ShrinkShift": ShrinkShift}


def _build_transform(spec: Mapping[str, Any] | A.BasicTransform) -> A.BasicTransform:
    if isinstance(spec, A.BasicTransform | A.BaseCompose):
        return spec
    spec = dict(spec)
    name = spec.pop("name", None) or spec.pop("_target_", None)
    if name is None:
        raise ValueError(f"augmentation spec {spec} needs a 'name' (an Albumentations class)")
    short = str(name).rsplit(".", 1)[-1]
    cls = TRANSFORMS.get(short) or getattr(A, short, None)
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
