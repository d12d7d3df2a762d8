"""Augmentations that run on the training device, after the host→device transfer, with Kornia.

Per-pixel transforms are the dearest host work at the augmentation resolution (Albumentations'
GaussNoise was half of the workers' augmentation time, docs/results/tools.md); on an accelerator
they are nearly free. ``model.device_augmentations`` names any ``kornia.augmentation`` transform
(``RandomGaussianBlur: {kernel_size: 5, sigma: [0.1, 2.0], p: 0.3}``) or ``GaussNoise``, a Kornia
augmentation with the semantics of its Albumentations namesake, so that moving it from the
workers is a config change:
``~data.augmentations.GaussNoise '+model.device_augmentations.GaussNoise={p: 1.0}'``.
Batches are float 0–255 here; Kornia's transforms see them as 0–1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import kornia.augmentation as K
import torch
from kornia.augmentation import random_generator as rg


class GaussNoise(K.IntensityAugmentationBase2D):
    """``A.GaussNoise`` on a 0–1 batch: for each image with probability ``p``, a std and a mean
    drawn uniformly from the ranges (fractions of the full range), noise added, clipped to 0–1.
    Kornia's own ``RandomGaussianNoise`` has one fixed std and does not clip."""

    def __init__(
        self,
        std_range: Sequence[float] = (0.2, 0.44),
        mean_range: Sequence[float] = (0.0, 0.0),
        per_channel: bool = True,
        p: float = 0.5,
        same_on_batch: bool = False,
    ) -> None:
        for name, (low, high) in (("std_range", std_range), ("mean_range", mean_range)):
            if low > high:
                raise ValueError(f"GaussNoise {name} must be [low, high], got {[low, high]}")
        if not 0 <= p <= 1:
            raise ValueError(f"GaussNoise p must be in [0, 1], got {p}")
        super().__init__(p=p, same_on_batch=same_on_batch)
        # Per-image std and mean only: the noise itself is drawn on the batch's device.
        self._param_generator = rg.PlainUniformGenerator(
            (tuple(std_range), "std", None, None), (tuple(mean_range), "mean", None, None)
        )
        self.flags = {"per_channel": per_channel}

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, c, h, w = input.shape
        std = params["std"].to(input).view(-1, 1, 1, 1)
        mean = params["mean"].to(input).view(-1, 1, 1, 1)
        channels = c if flags["per_channel"] else 1
        noise = torch.randn(b, channels, h, w, device=input.device, dtype=input.dtype)
        return (input + noise * std + mean).clamp(0, 1)


# hdvision's own device transforms; every other name is looked up in kornia.augmentation.
DEVICE_TRANSFORMS: dict[str, type[K.AugmentationBase2D]] = {"GaussNoise": GaussNoise}


class DeviceAugmentation:
    """Kornia transforms applied in order to a float (B, C, H, W) batch in 0–255.

    Not an ``nn.Module`` on purpose: Kornia keeps the transforms' ranges as buffers, which would
    enter the model's state_dict, and a trained model must not depend on how it was augmented.
    Kornia draws the (per-image, small) parameters on the CPU and applies them on the batch's
    device.
    """

    def __init__(self, transforms: Sequence[K.AugmentationBase2D]) -> None:
        self.transforms = K.AugmentationSequential(*transforms)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.transforms(images / 255.0) * 255.0


def _transform_class(name: str) -> type[K.AugmentationBase2D]:
    cls = DEVICE_TRANSFORMS.get(name) or getattr(K, name, None)
    if not (isinstance(cls, type) and issubclass(cls, K.AugmentationBase2D)):
        raise ValueError(
            f"unknown device augmentation {name!r} in model.device_augmentations; use "
            f"{sorted(DEVICE_TRANSFORMS)} or a kornia.augmentation transform "
            "(e.g. RandomGaussianBlur)"
        )
    return cls


def build_device_augmentations(specs: Mapping[str, Any] | None) -> DeviceAugmentation | None:
    """``{GaussNoise: {p: 1.0}, RandomGaussianBlur: {...}, ...}`` (``null`` entries dropped) →
    one module of a 0–255 float batch, or None when there is nothing to do. Arguments are checked
    on a tiny batch now, not at the first training batch; the RNG is left as it was."""
    transforms = []
    for name, spec in (specs or {}).items():
        if spec is None:
            continue
        cls = _transform_class(name)
        try:  # Kornia checks some arguments when built, others when first run
            transform = cls(**dict(spec))
            with torch.random.fork_rng(devices=[]):
                transform(torch.zeros(1, 3, 8, 8))
        except Exception as error:  # any of Kornia's errors, named for the user
            raise ValueError(f"model.device_augmentations.{name}: {error}") from None
        transforms.append(transform)
    return DeviceAugmentation(transforms) if transforms else None
